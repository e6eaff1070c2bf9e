// Package rrl is response rate limiting: the defence of authoritative
// servers against being used to reflect and amplify traffic at a spoofed
// victim (the semantics BIND, NSD and Knot share). Behind a load balancer
// every query comes from the balancer's own address, so the backends
// cannot limit per client any more; dnslb limits at the front instead.
//
// Responses are accounted per client prefix (/24 for IPv4, /56 for IPv6
// by default) and per response class: positive answers per name and
// type, NXDOMAIN per zone, errors and ANY per prefix. Each account earns
// its class's rate of responses per second and spends one per response;
// once it has overspent, responses are limited until it earns back. A
// limited response is dropped, except every slip-th one, which goes out
// as a truncated answer (TC=1, nothing but the question), so that a real
// client behind the prefix retries over TCP, which is never limited, while
// the reflection gets nothing bigger than the query.
//
// The table of accounts has a fixed size with least-recently-used
// eviction: memory is table_size × 32 bytes (AccountBytes), whatever the traffic.
// Deciding allocates nothing.
//
// What it does not do: choose the class (the caller classifies the
// response), build the truncated answer, or count metrics by name.
package rrl
