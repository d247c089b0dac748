"""Server side of the fleet: the internal CA, enrollment, the agent gateway (WSS + mTLS)."""
