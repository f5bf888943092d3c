"""Balancers under test: nginx now; HAProxy and others implement the same protocol."""
