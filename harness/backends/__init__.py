"""The backend instances a balancer spreads load over: one OS process each."""

# Every response names the instance that served it in this header (and in its JSON body).
INSTANCE_HEADER = "X-Instance"
# The path an instance received, after whatever the balancer rewrote.
PATH_HEADER = "X-Instance-Path"
# The instances' gRPC service (backends.grpc_service), its methods' full names, and the trailer
# each call's answer names the instance in.
GRPC_SERVICE = "harness.Echo"
GRPC_UNARY = f"/{GRPC_SERVICE}/Unary"
GRPC_STREAM = f"/{GRPC_SERVICE}/Stream"
GRPC_INSTANCE_METADATA = "x-instance"
