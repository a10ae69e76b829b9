/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hostfw_push.h - what the server keeps current on its hosts by itself,
 * for the network (docs/networking.md): each host firewall's cluster peers
 * (the other hosts' link addresses, hosts.address), and after an agent's
 * hello its security group ruleset, so an agent that was away while
 * groups changed converges.
 */
#pragma once

#include <stdbool.h>

struct kc_server;

/* An IP literal from the agent link's peer string ("a.b.c.d", "[v6]", an
 * IPv4-mapped v6 as IPv4), printed back by inet_ntop; false if it is none. */
bool kc_hostfw_link_address(const char *peer, char out[46]);

/* Sends host.firewall.peers to every host connected to this server (or
 * only to `only`): the addresses of all other hosts (an agent without a
 * firewall policy only keeps the list for when it gets one).  Never
 * fails: errors are logged; a host that is down gets its list at its
 * next hello. */
void kc_hostfw_push_peers(struct kc_server *srv, const char *only);

/* After `host`'s hello from `address` (kc_hostfw_link_address; NULL if
 * unknown), off the link's thread: the address recorded; the peer lists
 * of every host if it is new or changed (else only the host's own); the
 * host's security group ruleset. */
void kc_net_after_hello(struct kc_server *srv, const char *host, const char *address);
