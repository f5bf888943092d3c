"""The backend instances a balancer spreads load over: one OS process each."""

# Every response names the instance that served it in this header (and in its JSON body).
INSTANCE_HEADER = "X-Instance"
