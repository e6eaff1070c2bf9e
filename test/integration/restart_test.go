package integration

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"context"
	"github.com/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/internal/testpeer"
	"github.com/miekg/dns"
)

// tcpLoad counts what closed-loop TCP clients saw. A query cut by a clean
// close (EOF) is retried on a new connection, as RFC 7766 clients do; a
// reset or an error is a failure.
type tcpLoad struct {
	mu              sync.Mutex
	answered, retry int
	failures        []string
}

// tcpStream runs n TCP clients sending whoami queries one after another
// (at most max each) until stop is closed.
func tcpStream(server netip.AddrPort, n, max int, stop <-chan struct{}) *tcpLoad {
	res := &tcpLoad{}
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var conn *dns.Conn
			defer func() {
				if conn != nil {
					conn.Close()
				}
			}()
			for i := 0; i < max; i++ {
				select {
				case <-stop:
					return
				default:
				}
				for attempt := 0; ; attempt++ {
					if conn == nil {
						c, err := dns.DialTimeout("tcp", server.String(), 2*time.Second)
						if err != nil {
							res.fail("dial: " + err.Error())
							return
						}
						conn = c
					}
					m := question("whoami.example.test.", dns.TypeTXT)
					err := conn.WriteMsg(m)
					var r *dns.Msg
					if err == nil {
						conn.SetReadDeadline(time.Now().Add(3 * time.Second))
						r, err = conn.ReadMsg()
					}
					if err == nil && r.Id == m.Id {
						res.mu.Lock()
						res.answered++
						res.mu.Unlock()
						break
					}
					conn.Close()
					conn = nil
					if (errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE)) && attempt < 3 {
						res.mu.Lock()
						res.retry++
						res.mu.Unlock()
						continue
					}
					res.fail("query: " + errString(err))
					return
				}
			}
		}()
	}
	wg.Wait()
	return res
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (r *tcpLoad) fail(s string) {
	r.mu.Lock()
	r.failures = append(r.failures, s)
	r.mu.Unlock()
}

func errString(err error) string {
	if err == nil {
		return "wrong answer ID"
	}
	return err.Error()
}

// TestGracefulRestart: SIGUSR2 starts a new dnslb that takes over the
// listening sockets (and the admin listener and the backends' health);
// the old one finishes its in-flight queries and exits 0. Under a steady
// UDP and TCP stream nothing is lost and no TCP query is reset; TCP
// clients whose connection closed cleanly retry on a new one.
func TestGracefulRestart(t *testing.T) {
	l, _, _, _ := startPairWith(t, "health_check:\n  query: {name: example.test., type: SOA}\n  interval: 1s\n  rise: 2\n", nil)
	// the new process joins the old one's process group: kill both at the end
	t.Cleanup(func() { syscall.Kill(-l.cmd.Process.Pid, syscall.SIGKILL) })
	for deadline := time.Now().Add(5 * time.Second); ; {
		if l.backendStatus("ns1").Health == "up" && l.backendStatus("ns2").Health == "up" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("backends not up")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A new process that cannot start (here: the file became invalid) leaves
	// the old one serving.
	good := readFile(t, l.config)
	writeFile(t, l.config, "listen: []\n")
	l.signal(syscall.SIGUSR2)
	l.waitLog("graceful restart failed, still serving", 10*time.Second)
	if testpeer.Whoami(t, l.listen) == "" {
		t.Fatal("not serving after a failed restart")
	}
	if r := exchange(t, "tcp", l.listen, question("whoami.example.test.", dns.TypeTXT)); len(r.Answer) != 1 {
		t.Fatalf("TCP after a failed restart: %v", r)
	}
	if l.backendStatus("ns1").Health != "up" {
		t.Fatal("admin API not back after a failed restart")
	}
	writeFile(t, l.config, good)

	stop := make(chan struct{})
	udpDone := make(chan *loadResult)
	tcpDone := make(chan *tcpLoad)
	go func() { udpDone <- stream(dialConns(t, nil, l.listen, 8), 20000, stop) }() // bounded: 8 x 20000
	go func() { tcpDone <- tcpStream(l.listen, 4, 50000, stop) }()                 // bounded: 4 x 50000
	time.Sleep(500 * time.Millisecond)

	l.signal(syscall.SIGUSR2)
	l.waitLog("handed over to the new process", 10*time.Second)
	m := regexp.MustCompile(`handed over to the new process.* pid=(\d+)`).FindStringSubmatch(l.log.String())
	if m == nil {
		t.Fatalf("no pid in the hand-over line:\n%s", lastLines(l.log.String(), 10))
	}
	newPID, _ := strconv.Atoi(m[1])
	if code := l.waitExit(10 * time.Second); code != 0 {
		t.Fatalf("old process exit code %d", code)
	}
	t.Logf("old process %d exited 0; new process %d serves", l.cmd.Process.Pid, newPID)
	// the new process answers on the inherited admin listener, with the
	// backends' health inherited (not pending)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := admin.Fetch(ctx, l.admin, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range st.Backends {
		if b.Health != "up" {
			t.Fatalf("new process: backend %s is %s", b.Name, b.Health)
		}
	}
	time.Sleep(time.Second)
	close(stop)
	udp, tcp := <-udpDone, <-tcpDone
	t.Logf("UDP across the restart: %s", udp)
	t.Logf("TCP across the restart: answered=%d retried after a clean close=%d failures=%d", tcp.answered, tcp.retry, len(tcp.failures))
	if len(udp.lost) > 0 || len(udp.mismatched) > 0 {
		t.Fatalf("UDP queries lost across the restart: %s; first: %s", udp, first(udp.lost))
	}
	if len(tcp.failures) > 0 {
		t.Fatalf("TCP failures across the restart: %v", tcp.failures)
	}
	if tcp.answered == 0 || udp.answered == 0 {
		t.Fatal("no traffic")
	}
	// the new process took over: it still answers after the old one is gone
	if testpeer.Whoami(t, l.listen) == "" {
		t.Fatal("nobody answers after the restart")
	}
}
