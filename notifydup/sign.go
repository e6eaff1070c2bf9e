package notifydup

import (
	"strings"
	"time"

	"github.com/miekg/dns"
)

// TSIGKey is a TSIG key shared with the zone primaries.
type TSIGKey struct {
	Name      string // fully qualified, lower case
	Algorithm string // miekg/dns constant, e.g. "hmac-sha256."
	Secret    string // base64
}

// signedAnswer verifies a TSIG-signed NOTIFY and returns its signed
// NOERROR answer (AA, same ID and question, an OPT record if the request
// had one); ok is false when the request is not signed with one of keys
// or does not verify. Then the plain answer is sent, and the copies,
// which are verbatim, are judged by the secondaries themselves.
func signedAnswer(payload []byte, keys []TSIGKey) ([]byte, bool) {
	req := new(dns.Msg)
	if err := req.Unpack(payload); err != nil {
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
	if key == nil || dns.TsigVerify(payload, key.Secret, "", false) != nil {
		return nil, false
	}
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Opcode = dns.OpcodeNotify
	resp.Authoritative = true
	resp.Answer, resp.Ns, resp.Extra = nil, nil, nil
	if o := req.IsEdns0(); o != nil {
		// RFC 6891 6.1.1: an OPT in the request, one in the answer
		resp.SetEdns0(1232, o.Do())
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
