package etcd

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"os"

	"github.com/gptme/credslots"
)

// KeySize is the size of the AES-256 key, in bytes.
const KeySize = 32

// sealVersion is the first byte of every sealed value.
const sealVersion = 1

// sealer seals and opens values with AES-256-GCM, each bound to its etcd
// key name through the associated data, so that a ciphertext copied under
// another key does not open.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("credslots-etcd: the key holds %d bytes; want exactly %d: %w", len(key), KeySize, ErrBadKey)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("credslots-etcd: %v: %w", err, ErrBadKey)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("credslots-etcd: %v: %w", err, ErrBadKey)
	}
	return &sealer{aead: aead}, nil
}

// ReadKeyFile reads an AES-256 key file: exactly 32 bytes, a regular file
// that neither its group nor others may read. The error never holds the
// key's bytes.
func ReadKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("credslots-etcd: key file: %w (%w)", err, ErrBadKey)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("credslots-etcd: key file %s has mode %04o; others may read it (chmod 600 it): %w", path, fi.Mode().Perm(), ErrBadKey)
	}
	key, err := credslots.ReadCredentialFile(path)
	if err != nil {
		return nil, fmt.Errorf("credslots-etcd: key file: %w (%w)", err, ErrBadKey)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("credslots-etcd: key file %s holds %d bytes; want exactly %d (make one with: head -c 32 /dev/urandom > %s): %w", path, len(key), KeySize, path, ErrBadKey)
	}
	return key, nil
}

// seal encrypts plain for the etcd key name.
func (s *sealer) seal(name string, plain []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("credslots-etcd: nonce: %w", err)
	}
	out := make([]byte, 0, 1+len(nonce)+len(plain)+s.aead.Overhead())
	out = append(out, sealVersion)
	out = append(out, nonce...)
	return s.aead.Seal(out, nonce, plain, []byte(name)), nil
}

// open decrypts the value stored under the etcd key name.
func (s *sealer) open(name string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, fmt.Errorf("credslots-etcd: %s is not a sealed value: %w", name, ErrBadKey)
	}
	plain, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(name))
	if err != nil {
		return nil, fmt.Errorf("credslots-etcd: %s does not open with this key (wrong key, or the value was moved or changed): %w", name, ErrBadKey)
	}
	return plain, nil
}
