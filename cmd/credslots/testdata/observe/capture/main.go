// Command capture writes the curl -sD - fixtures of credslots observe's
// tests: curl talks to stand-in API servers on 127.0.0.1 that answer with
// the headers Anthropic's and Codex's APIs send. Run it from this
// directory's parent: go run ./capture (it needs curl).
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
)

func main() {
	api := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("content-type", "application/json")
		switch r.URL.Path {
		case "/allowed":
			h.Set("anthropic-ratelimit-unified-status", "allowed")
			h.Set("anthropic-ratelimit-unified-reset", "1767279600")
			h.Set("anthropic-ratelimit-unified-representative-claim", "five_hour")
			h.Set("anthropic-ratelimit-unified-5h-status", "allowed")
			h.Set("anthropic-ratelimit-unified-5h-reset", "1767279600")
			h.Set("anthropic-ratelimit-unified-5h-utilization", "0.42")
			h.Set("anthropic-ratelimit-unified-7d-status", "allowed")
			h.Set("anthropic-ratelimit-unified-7d-reset", "1767700800")
			h.Set("anthropic-ratelimit-unified-7d-utilization", "0.3")
			io.WriteString(w, `{"id":"msg_01","type":"message","content":[{"type":"text","text":"ok"}]}`)
		case "/rejected":
			for _, kv := range [][2]string{
				{"retry-after", "7200"},
				{"anthropic-ratelimit-unified-status", "rejected"},
				{"anthropic-ratelimit-unified-reset", "1767276000"},
				{"anthropic-ratelimit-unified-representative-claim", "five_hour"},
				{"anthropic-ratelimit-unified-fallback-percentage", "0.5"},
				{"anthropic-ratelimit-unified-5h-status", "rejected"},
				{"anthropic-ratelimit-unified-5h-reset", "1767276000"},
				{"anthropic-ratelimit-unified-5h-utilization", "1.02"},
				{"anthropic-ratelimit-unified-7d-status", "allowed"},
				{"anthropic-ratelimit-unified-7d-reset", "1767700800"},
				{"anthropic-ratelimit-unified-7d-utilization", "0.3068459187383675"},
				{"anthropic-ratelimit-unified-overage-status", "rejected"},
				{"anthropic-ratelimit-unified-overage-disabled-reason", "org_level_disabled"},
				{"request-id", "req_011CVeoHF4hrg6oVjdfvoYiv"},
				{"x-should-retry", "false"},
			} {
				h[kv[0]] = []string{kv[1]} // as given: HTTP/1.1 keeps the lower case
			}
			io.Copy(io.Discard, r.Body) // reading the body sends 100 Continue
			w.WriteHeader(429)
			io.WriteString(w, `{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed your account's rate limit. Please try again later."}}`)
		case "/unauthorized":
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(401)
			io.WriteString(w, `{"type":"error","error":{"type":"authentication_error","message":"OAuth token has been revoked."}}`)
		case "/codex":
			h.Set("x-codex-primary-used-percent", "100")
			h.Set("x-codex-primary-window-minutes", "300")
			h.Set("x-codex-primary-reset-at", "1767283200")
			h.Set("x-codex-secondary-used-percent", "45")
			h.Set("x-codex-secondary-window-minutes", "10080")
			h.Set("x-codex-secondary-reset-at", "1767700800")
			w.WriteHeader(429)
			io.WriteString(w, `{"error":{"type":"usage_limit_reached","message":"The usage limit has been reached"}}`)
		case "/retry":
			h.Set("retry-after", "120")
			w.WriteHeader(429)
			io.WriteString(w, `{"type":"error","error":{"type":"rate_limit_error","message":"Rate limited"}}`)
		}
	}))
	api.EnableHTTP2 = true
	api.StartTLS()
	defer api.Close()
	// A CONNECT proxy.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			w.WriteHeader(502)
			return
		}
		hj, _ := w.(http.Hijacker)
		c, buf, _ := hj.Hijack()
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		go io.Copy(up, buf)
		io.Copy(c, up)
		c.Close()
	}))
	for _, run := range []struct {
		name string
		args []string
	}{
		{"http2-rejected", []string{"-sk", "-D", "-", "--http2", api.URL + "/rejected"}},
		{"http11-allowed", []string{"-sk", "-D", "-", "--http1.1", api.URL + "/allowed"}},
		{"http11-continue-401", []string{"-sk", "-D", "-", "--http1.1", "-H", "Expect: 100-continue", "--data-binary", "@-", api.URL + "/unauthorized"}},
		{"http11-continue-rejected", []string{"-sk", "-D", "-", "--http1.1", "-H", "Expect: 100-continue", "--data-binary", "@-", api.URL + "/rejected"}},
		{"http2-codex-429", []string{"-sk", "-D", "-", "--http2", api.URL + "/codex"}},
		{"proxy-connect-http2-429", []string{"-sk", "-D", "-", "--http2", "-x", "http://" + ln.Addr().String(), api.URL + "/retry"}},
	} {
		cmd := exec.Command("curl", run.args...)
		cmd.Stdin = strings.NewReader(strings.Repeat("a", 2048))
		out, err := cmd.Output()
		if err != nil {
			fmt.Fprintln(os.Stderr, run.name, err)
		}
		if err := os.WriteFile(run.name+".txt", out, 0o644); err != nil {
			panic(err)
		}
	}
}
