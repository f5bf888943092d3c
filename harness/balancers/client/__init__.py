"""Client-side balancing: the clients pick instances themselves, with no balancer process."""
