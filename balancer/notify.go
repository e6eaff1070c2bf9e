package balancer

import (
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// notifyReply is the balancer's own answer to a NOTIFY (RFC 1996 4.7):
// NOERROR with AA to a primary, REFUSED to anyone else, same ID, opcode and
// question; signed with the request's TSIG key when the request is signed
// with a configured key and verifies. It is built in place in pkt.
func (b *Balancer) notifyReply(pkt []byte, m message, fromPrimary bool, s *Settings, client netip.Addr) []byte {
	if fromPrimary && len(s.NotifyKeys) > 0 && len(pkt) >= headerLen && (pkt[10] != 0 || pkt[11] != 0) {
		if signed, ok := signedNotifyAnswer(pkt, s.NotifyKeys); ok {
			b.signedNotifies.Add(1)
			return signed
		}
	}
	if fromPrimary {
		return b.selfAnswer(pkt, m, rcodeNoError, true, client)
	}
	return b.selfAnswer(pkt, m, rcodeRefused, false, client)
}

// signedNotifyAnswer verifies a TSIG-signed NOTIFY and returns its signed
// NOERROR answer; ok is false when the request is not signed with a known
// key or does not verify (then the plain answer is sent and the copies,
// which are verbatim, are judged by the secondaries themselves).
func signedNotifyAnswer(pkt []byte, keys []TSIGKey) ([]byte, bool) {
	req := new(dns.Msg)
	if err := req.Unpack(pkt); err != nil {
		return nil, false
	}
	t := req.IsTsig()
	if t == nil {
		return nil, false
	}
	var key *TSIGKey
	for i := range keys {
		if strings.EqualFold(keys[i].Name, t.Hdr.Name) && strings.EqualFold(keys[i].Algorithm, t.Algorithm) {
			key = &keys[i]
			break
		}
	}
	if key == nil || dns.TsigVerify(pkt, key.Secret, "", false) != nil {
		return nil, false
	}
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Opcode = dns.OpcodeNotify
	resp.Authoritative = true
	resp.Answer, resp.Ns, resp.Extra = nil, nil, nil
	if o := req.IsEdns0(); o != nil {
		// RFC 6891 6.1.1: an OPT in the request, one in the answer
		resp.SetEdns0(ednsUDPSize, o.Do())
		if o.Version() != 0 {
			resp.Rcode = dns.RcodeBadVers
		}
	}
	resp.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
	out, _, err := dns.TsigGenerate(resp, key.Secret, t.MAC, false)
	if err != nil {
		return nil, false
	}
	return out, true
}
