// Package dnswire walks DNS messages in wire format without unpacking them:
// names, questions and resource records are checked and skipped in place,
// with no allocation, so the data plane can decide per packet whether a
// message is well formed before a backend sees it.
//
// What it checks is the contract written in balancer/doc.go ("What a
// backend is handed"); Check is its one implementation and FuzzCheck tests
// it against github.com/miekg/dns:
//
//   - names: labels of at most 63 bytes, at most 255 bytes in all,
//     compression pointers only backwards (so they cannot loop), no
//     reserved label types;
//   - every record: owner name, the 10-byte fixed part, RDATA within the
//     message, nothing after the last record;
//   - the RDATA of the types whose names a server must decompress
//     (RFC 3597 section 4: NS, MD, MF, CNAME, SOA, MB, MG, MR, PTR, MINFO,
//     MX, RP, AFSDB, RT, SIG, PX, NAPTR, SRV, plus KX, DNAME and TSIG): its
//     fields and names fill RDLENGTH exactly. An empty RDATA (RFC 2136
//     prerequisites and deletes) is always accepted;
//   - OPT (RFC 6891): at most one, in the additional section, owned by the
//     root, its options filling its RDATA; the options a server acts on for
//     every query are checked too: EDNS Client Subnet (RFC 7871 section 6)
//     and COOKIE (RFC 7873 section 4);
//   - TSIG and SIG(0) only as the last additional record (RFC 8945 5.1,
//     RFC 2931 3.1).
//
// What it does not check: the RDATA of any other type (an A record of 3
// bytes, a URI record of 1 byte), which a server that does not know the type
// treats as opaque (RFC 3597) and one that does answers FORMERR to; DNSSEC
// or TSIG validity; the meaning of flags.
//
// The walker itself is written here rather than taken from miekg/dns
// because it runs per packet and must not allocate; miekg/dns is the
// reference it is fuzzed against.
package dnswire
