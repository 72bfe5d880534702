"""Ways to run judge-server replicas inside someone else's cluster manager (Ray Serve).

Above ``api`` (each replica builds the app) and below ``cli``; imports stay lazy.
"""
