package etcd_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// memberMain runs one embedded etcd member until it is killed (or its
// parent dies).
func memberMain() int {
	cfg := embed.NewConfig()
	cfg.Name = os.Getenv("MEMBER_NAME")
	cfg.Dir = os.Getenv("MEMBER_DIR")
	cfg.TickMs, cfg.ElectionMs = 50, 500
	cfg.LogOutputs = []string{filepath.Join(cfg.Dir, "..", cfg.Name+".log")}
	cfg.LogLevel = "warn"
	peer, client := mustURL(os.Getenv("MEMBER_PEER")), mustURL(os.Getenv("MEMBER_CLIENT"))
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.InitialCluster = os.Getenv("MEMBER_CLUSTER")
	cfg.InitialClusterToken = "credslots-test"
	cfg.ListenMetricsUrls = nil
	if ca := os.Getenv("MEMBER_CA"); ca != "" {
		cfg.ClientTLSInfo = transport.TLSInfo{CertFile: os.Getenv("MEMBER_CERT"), KeyFile: os.Getenv("MEMBER_KEY"),
			TrustedCAFile: ca, ClientCertAuth: true}
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "member:", err)
		return 1
	}
	<-e.Server.ReadyNotify()
	err = <-e.Err()
	fmt.Fprintln(os.Stderr, "member stopped:", err)
	return 1
}

func mustURL(s string) url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return *u
}

// member is one running member process.
type member struct {
	name, client string
	cmd          *exec.Cmd
	exited       chan struct{}
}

// cluster is a three-member etcd cluster on 127.0.0.1.
type cluster struct {
	members []*member
}

func (c *cluster) endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.client)
	}
	return eps
}

func (c *cluster) endpointList() string { return strings.Join(c.endpoints(), ",") }

// kill SIGKILLs member i.
func (c *cluster) kill(i int) {
	m := c.members[i]
	_ = m.cmd.Process.Kill()
	<-m.exited
}

func (c *cluster) stop() {
	for _, m := range c.members {
		_ = m.cmd.Process.Kill()
		<-m.exited
	}
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// startCluster starts three members in dir and waits until the cluster
// answers a write.
func startCluster(dir string) (*cluster, error) { return startMembers(dir, 3, nil) }

// startMembers starts n members, serving clients over TLS when tls is set.
func startMembers(dir string, n int, tls *tlsFiles) (*cluster, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	var initial []string
	for i := 0; i < n; i++ {
		initial = append(initial, fmt.Sprintf("m%d=http://127.0.0.1:%d", i, ports[2*i]))
	}
	scheme := "http"
	var tlsEnv []string
	if tls != nil {
		scheme = "https"
		tlsEnv = []string{"MEMBER_CA=" + tls.ca, "MEMBER_CERT=" + tls.serverCert, "MEMBER_KEY=" + tls.serverKey}
	}
	c := &cluster{}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("m%d", i)
		m := &member{name: name, client: fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i+1]), exited: make(chan struct{})}
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(append(os.Environ(), tlsEnv...), roleEnv+"=member", "MEMBER_NAME="+name,
			"MEMBER_DIR="+filepath.Join(dir, name+".etcd"),
			fmt.Sprintf("MEMBER_PEER=http://127.0.0.1:%d", ports[2*i]), "MEMBER_CLIENT="+m.client,
			"MEMBER_CLUSTER="+strings.Join(initial, ","))
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			c.stop()
			return nil, err
		}
		m.cmd = cmd
		go func() { _ = cmd.Wait(); close(m.exited) }()
		c.members = append(c.members, m)
	}
	ccfg := clientv3.Config{Endpoints: c.endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	if tls != nil {
		info := transport.TLSInfo{CertFile: tls.clientCert, KeyFile: tls.clientKey, TrustedCAFile: tls.ca}
		if ccfg.TLS, err = info.ClientConfig(); err != nil {
			c.stop()
			return nil, err
		}
	}
	cli, err := clientv3.New(ccfg)
	if err != nil {
		c.stop()
		return nil, err
	}
	defer cli.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = cli.Put(ctx, "/ready", "1")
		cancel()
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("cluster did not come up: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var (
	sharedOnce sync.Once
	shared     *cluster
	sharedDir  string
	sharedErr  error
)

// sharedCluster is one cluster for every test that kills no member; each
// test keeps to its own prefix.
func sharedCluster(t *testing.T) *cluster {
	t.Helper()
	sharedOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "credslots-etcd-test-")
		if sharedErr == nil {
			shared, sharedErr = startCluster(sharedDir)
		}
	})
	if sharedErr != nil {
		t.Fatalf("start the cluster: %v", sharedErr)
	}
	return shared
}

func stopSharedCluster() {
	if shared != nil {
		shared.stop()
	}
	if sharedDir != "" {
		_ = os.RemoveAll(sharedDir)
	}
}

// ownCluster starts a cluster for one test that kills a member.
func ownCluster(t *testing.T) *cluster {
	t.Helper()
	c, err := startCluster(t.TempDir())
	if err != nil {
		t.Fatalf("start the cluster: %v", err)
	}
	t.Cleanup(c.stop)
	return c
}

// proxy forwards TCP connections to target until cut.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	cut    bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: strings.TrimPrefix(target, "http://")}
	go p.serve()
	t.Cleanup(p.Cut)
	return p
}

func (p *proxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			_ = in.Close()
			_ = out.Close()
			return
		}
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(out, in); _ = out.Close() }()
		go func() { _, _ = io.Copy(in, out); _ = in.Close() }()
	}
}

// Cut closes the listener and every forwarded connection: whoever reached
// the cluster only through the proxy is partitioned from it.
func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return
	}
	p.cut = true
	_ = p.ln.Close()
	for _, c := range p.conns {
		_ = c.Close()
	}
}
