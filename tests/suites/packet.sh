# tests/suites/packet.sh - packet sockets (sourced by tests/run.sh).

# pkt_sock holds a filtered cooked socket with a promiscuous membership
# and a raw one in a fanout group, both bound to lo; after restore each is
# bound, filtered and grouped as before and the filter still lets the
# scenario's probe through (its own check).
register pkt_sock/once test_cr pkt_sock once
register pkt_sock/x3 test_cr pkt_sock x3
register pkt_sock/leave-running test_cr pkt_sock leave-running
