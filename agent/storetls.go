package agent

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// The store's members and clients authenticate one another with mutual
// TLS. Every node derives the same certificate authority from the pool's
// token (the pool's one secret, which every agent already holds), so no
// key needs to travel: whoever has the token can reach the store, and
// nobody else can, not even on the private network. Each process then
// issues itself a leaf certificate with a fresh key.

// storeCA is a pool's store authority: its certificate and private key.
type storeCA struct {
	cert    *x509.Certificate
	certDER []byte
	key     ed25519.PrivateKey
}

// newStoreCA derives the pool's authority from its token. Ed25519
// signatures are deterministic, so every node derives a byte-identical
// certificate.
func newStoreCA(token, pool string) (*storeCA, error) {
	if token == "" {
		return nil, errors.New("store: no pool token")
	}
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte("skyward collections store CA\x00" + pool))
	key := ed25519.NewKeyFromSeed(mac.Sum(nil))
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "skyward pool " + pool + " store CA"},
		NotBefore:             time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2120, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("store: certificate authority: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &storeCA{cert: cert, certDER: der, key: key}, nil
}

// issue makes a leaf certificate for a server and client at the given
// addresses (which may be empty for a client only), valid for a day.
func (ca *storeCA) issue(name string, ips []net.IP) (tls.Certificate, []byte, []byte, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("store: issue certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	return pair, certPEM, keyPEM, err
}

// pem is the authority's certificate in PEM.
func (ca *storeCA) pem() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.certDER})
}

// clientTLS is the TLS configuration of a client of the store: it trusts
// only the pool's authority and presents a certificate of its own.
func (ca *storeCA) clientTLS() (*tls.Config, error) {
	pair, _, _, err := ca.issue("skyward store client", nil)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS13}, nil
}
