package config

import "testing"

// TestClientAddressAndRRLProblems: every value of client_address,
// health_check.proxy_v2, ecs and rrl a user can get wrong gives one line
// at its key.
func TestClientAddressAndRRLProblems(t *testing.T) {
	doc := "listen: ['127.0.0.1:53']\n" +
		"backends: [{name: a, address: '10.0.0.1:53', client_address: proxy}]\n" +
		"health_check: {query: {name: example.}, proxy_v2: yes}\n" +
		"ecs: {ipv4_prefix_length: 33, ipv6_prefix_length: 0}\n" +
		"rrl: {responses_per_second: -1, slip: 11, window: 0s, exempt: [192.0.2.1/24, 198.51.100.0/24, 198.51.100.0/24], table_size: 10, ipv6_prefix_length: 129}\n"
	checkProblems(t, doc, nil, []string{
		`backends[0].client_address: "proxy": must be one of none, proxy_v2, proxy_v2_udp, ecs`,
		`health_check.proxy_v2: "yes": must be one of self, none`,
		"ecs.ipv4_prefix_length: 33 out of range 1-32",
		"ecs.ipv6_prefix_length: 0 out of range 1-128",
		"rrl.responses_per_second: -1 out of range 0-1000000",
		"rrl.slip: 11 out of range 0-10",
		"rrl.window: 0s out of range [1s, 1h0m0s]",
		"rrl.ipv6_prefix_length: 129 out of range 1-128",
		`rrl.exempt[0]: "192.0.2.1/24": host bits set (the network is 192.0.2.0/24)`,
		"rrl.exempt[2]: duplicate of rrl.exempt[1]",
		"rrl.table_size: 10 out of range 256-16777216",
	})
}
