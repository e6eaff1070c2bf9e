package balancer

import (
	"strings"
	"time"

	"github.com/miekg/dns"
)

// notifyReply is the balancer's own answer to a NOTIFY: signed with the
// request's TSIG key when the request is signed with a configured key and
// verifies, otherwise the plain answer built in place.
func (b *Balancer) notifyReply(pkt []byte, m message, fromPrimary bool, s *Settings) []byte {
	if fromPrimary && len(s.NotifyKeys) > 0 && len(pkt) >= headerLen && (pkt[10] != 0 || pkt[11] != 0) {
		if signed, ok := signedNotifyAnswer(pkt, s.NotifyKeys); ok {
			b.signedNotifies.Add(1)
			return signed
		}
	}
	return notifyAnswer(pkt, m, fromPrimary)
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
	resp.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
	out, _, err := dns.TsigGenerate(resp, key.Secret, t.MAC, false)
	if err != nil {
		return nil, false
	}
	return out, true
}
