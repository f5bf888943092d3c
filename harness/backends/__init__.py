"""The backend instances a balancer spreads load over: one OS process each."""

# Every response names the instance that served it in this header (and in its JSON body).
INSTANCE_HEADER = "X-Instance"
# The path an instance received, after whatever the balancer rewrote.
PATH_HEADER = "X-Instance-Path"
