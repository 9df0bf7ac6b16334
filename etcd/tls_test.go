package etcd_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tlsFiles are a throwaway CA and the certificates it signed.
type tlsFiles struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600))
}

func makeTLS(t *testing.T) *tlsFiles {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	f := &tlsFiles{ca: filepath.Join(dir, "ca.pem")}
	writePEM(t, f.ca, "CERTIFICATE", caDER)
	issue := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		kder, err := x509.MarshalECPrivateKey(key)
		require.NoError(t, err)
		cert, keyPath := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		writePEM(t, cert, "CERTIFICATE", der)
		writePEM(t, keyPath, "EC PRIVATE KEY", kder)
		return cert, keyPath
	}
	f.serverCert, f.serverKey = issue("server", 2, x509.ExtKeyUsageServerAuth)
	f.clientCert, f.clientKey = issue("client", 3, x509.ExtKeyUsageClientAuth)
	return f
}

// The TLS flags reach a member that takes only clients with a certificate.
func TestTLSFlags(t *testing.T) {
	files := makeTLS(t)
	c, err := startMembers(t.TempDir(), 1, files)
	require.NoError(t, err)
	t.Cleanup(c.stop)
	key := writeKey(t)
	login := filepath.Join(t.TempDir(), "login.json")
	require.NoError(t, os.WriteFile(login, claudeLogin("alice", 0, later), 0o600))
	tlsFlags := []string{"--endpoints", c.endpointList(), "--key-file", key,
		"--cacert", files.ca, "--cert", files.clientCert, "--key", files.clientKey}
	_, stderr, code := runCLI(t, append(tlsFlags, "import", "alice", login)...)
	require.Equal(t, 0, code, stderr)
	out, stderr, code := runCLI(t, append(tlsFlags, "status")...)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "alice")

	_, _, code = runCLI(t, "--endpoints", c.endpointList(), "--key-file", key, "--cacert", files.ca, "status")
	assert.NotEqual(t, 0, code, "no client certificate, no access")
	_, stderr, code = runCLI(t, "--endpoints", c.endpointList(), "--key-file", key, "--cert", files.clientCert, "status")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--cert and --key go together")
}
