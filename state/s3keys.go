package state

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"golang.org/x/crypto/argon2"
)

// MinStateKeyLength is the shortest SKYWARD_STATE_KEY accepted.
const MinStateKeyLength = 16

// The key derivation's cost: Argon2id with 64 MiB, one pass, four lanes
// (RFC 9106's second recommended option), once per process and salt.
const (
	kdfTime    = 1
	kdfMemory  = 64 * 1024
	kdfThreads = 4
)

// sealed is the keys object as stored: every secret, JSON-encoded, then
// encrypted with AES-256-GCM under a key derived from the passphrase with
// Argon2id, or under a data key from KMS (envelope encryption: the data
// key is stored encrypted by the KMS key). The object's name is the
// additional data (and KMS's encryption context), so a keys object copied
// over another state's does not decrypt.
type sealed struct {
	Format     string    `json:"format"` // "skyward-keys"
	Version    int       `json:"version"`
	Cipher     string    `json:"cipher"` // "AES-256-GCM"
	KDF        kdfParams `json:"kdf"`
	Nonce      []byte    `json:"nonce"`
	Ciphertext []byte    `json:"ciphertext"`
}

type kdfParams struct {
	Name      string `json:"name"` // "argon2id" or "aws-kms"
	Salt      []byte `json:"salt,omitempty"`
	Time      uint32 `json:"time,omitempty"`
	MemoryKiB uint32 `json:"memory_kib,omitempty"`
	Threads   uint8  `json:"threads,omitempty"`
	// With "aws-kms": the KMS key and the data key it encrypted.
	KMSKeyID     string `json:"kms_key_id,omitempty"`
	EncryptedKey []byte `json:"encrypted_key,omitempty"`
}

// s3Keys is the S3 backend's KeyStore: one object, Key.keys, holding every
// secret encrypted. It is read once and kept in memory; each change
// rewrites the object (callers that change keys hold the state lock).
type s3Keys struct {
	b          *S3
	object     string
	passphrase string

	mu      sync.Mutex
	loaded  bool
	secrets map[string][]byte
	etag    string
	salt    []byte
	derived []byte // the key derived from passphrase and salt
	// With KMS: the data key in clear (memory only) and as KMS encrypted it.
	dataKey, encryptedKey []byte
}

var _ KeyStore = (*s3Keys)(nil)

// errNoStateKey is returned by every key operation without a passphrase.
var errNoStateKey = fmt.Errorf(`backend "s3" keeps SSH keys and tokens encrypted in the bucket: set SKYWARD_STATE_KEY to a passphrase of at least %d characters (keep it in your CI's secrets), or kms_key_id in the backend block`, MinStateKeyLength)

func (k *s3Keys) ready() error {
	switch {
	case k.b.cfg.KMSKeyID != "":
		return nil
	case k.passphrase == "":
		return errNoStateKey
	case len(k.passphrase) < MinStateKeyLength:
		return fmt.Errorf("SKYWARD_STATE_KEY is %d characters long; use at least %d", len(k.passphrase), MinStateKeyLength)
	}
	return nil
}

// load reads and decrypts the keys object once.
func (k *s3Keys) load(ctx context.Context) error {
	if err := k.ready(); err != nil {
		return err
	}
	if k.loaded {
		return nil
	}
	data, etag, err := k.b.get(ctx, k.object)
	if errors.Is(err, errNoObject) {
		k.secrets, k.etag, k.loaded = map[string][]byte{}, "", true
		return nil
	}
	if err != nil {
		return fmt.Errorf("read keys s3://%s/%s: %w", k.b.cfg.Bucket, k.object, err)
	}
	secrets, err := k.open(data)
	if err != nil {
		return fmt.Errorf("read keys s3://%s/%s: %w", k.b.cfg.Bucket, k.object, err)
	}
	k.secrets, k.etag, k.loaded = secrets, etag, true
	return nil
}

func (k *s3Keys) key(salt []byte) []byte {
	if k.derived == nil || string(salt) != string(k.salt) {
		k.salt = append([]byte(nil), salt...)
		k.derived = argon2.IDKey([]byte(k.passphrase), salt, kdfTime, kdfMemory, kdfThreads, 32)
	}
	return k.derived
}

func (k *s3Keys) open(data []byte) (map[string][]byte, error) {
	var s sealed
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("not a skyward keys object: %w", err)
	}
	if s.Format != "skyward-keys" || s.Version != 1 || s.Cipher != "AES-256-GCM" || (s.KDF.Name != "argon2id" && s.KDF.Name != "aws-kms") {
		return nil, fmt.Errorf("unsupported keys object (format %q version %d, %s, %s); upgrade skyward", s.Format, s.Version, s.Cipher, s.KDF.Name)
	}
	var key []byte
	wrong := "cannot decrypt: SKYWARD_STATE_KEY is not the passphrase the keys were encrypted with"
	switch s.KDF.Name {
	case "argon2id":
		if k.passphrase == "" {
			return nil, fmt.Errorf("the keys were encrypted with a passphrase: %w", errNoStateKey)
		}
		if s.KDF.Time != kdfTime || s.KDF.MemoryKiB != kdfMemory || s.KDF.Threads != kdfThreads {
			return nil, errors.New("unsupported key derivation parameters; upgrade skyward")
		}
		key = k.key(s.KDF.Salt)
	case "aws-kms":
		var err error
		if key, err = k.decryptDataKey(s.KDF.EncryptedKey); err != nil {
			return nil, fmt.Errorf("decrypt the data key with KMS key %s: %w", s.KDF.KMSKeyID, err)
		}
		wrong = "cannot decrypt: the object does not match its KMS data key"
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, s.Nonce, s.Ciphertext, []byte(k.object))
	if err != nil {
		return nil, errors.New(wrong)
	}
	secrets := map[string][]byte{}
	if err := json.Unmarshal(plain, &secrets); err != nil {
		return nil, fmt.Errorf("decrypted keys do not parse: %w", err)
	}
	return secrets, nil
}

func (k *s3Keys) seal(secrets map[string][]byte) ([]byte, error) {
	if id := k.b.cfg.KMSKeyID; id != "" {
		if k.dataKey == nil {
			if err := k.newDataKey(); err != nil {
				return nil, fmt.Errorf("generate a data key with KMS key %s: %w", id, err)
			}
		}
		return k.sealWith(secrets, k.dataKey, kdfParams{Name: "aws-kms", KMSKeyID: id, EncryptedKey: k.encryptedKey})
	}
	if k.salt == nil {
		salt := make([]byte, 16)
		if _, err := rand.Read(salt); err != nil {
			return nil, err
		}
		k.key(salt)
	}
	return k.sealWith(secrets, k.key(k.salt),
		kdfParams{Name: "argon2id", Salt: k.salt, Time: kdfTime, MemoryKiB: kdfMemory, Threads: kdfThreads})
}

func (k *s3Keys) sealWith(secrets map[string][]byte, key []byte, kdf kdfParams) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(secrets)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	s := sealed{
		Format: "skyward-keys", Version: 1, Cipher: "AES-256-GCM",
		KDF: kdf, Nonce: nonce, Ciphertext: aead.Seal(nil, nonce, plain, []byte(k.object)),
	}
	return json.MarshalIndent(&s, "", "  ")
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// save encrypts and writes secrets, conditional on the object being the
// one loaded.
func (k *s3Keys) save(ctx context.Context, secrets map[string][]byte) error {
	data, err := k.seal(secrets)
	if err != nil {
		return fmt.Errorf("encrypt keys: %w", err)
	}
	etag, err := k.b.put(ctx, k.object, data, &condition{ifMatch: k.etag, ifNoneMatch: k.etag == ""})
	if errors.Is(err, errPrecondition) {
		k.loaded = false
		return fmt.Errorf("write keys s3://%s/%s: changed by another writer; nothing was written: run the command again", k.b.cfg.Bucket, k.object)
	}
	if err != nil {
		return fmt.Errorf("write keys s3://%s/%s: %w", k.b.cfg.Bucket, k.object, err)
	}
	k.secrets, k.etag = secrets, etag
	return nil
}

func keyCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Minute)
}

// Read returns the secret stored under name.
func (k *s3Keys) Read(name string) ([]byte, error) {
	if err := checkKeyName(name); err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	ctx, cancel := keyCtx()
	defer cancel()
	if err := k.load(ctx); err != nil {
		return nil, err
	}
	v, ok := k.secrets[name]
	if !ok {
		return nil, fmt.Errorf("read key %s: not found in s3://%s/%s: %w", name, k.b.cfg.Bucket, k.object, fs.ErrNotExist)
	}
	return append([]byte(nil), v...), nil
}

// Write stores data under name and rewrites the keys object.
func (k *s3Keys) Write(name string, data []byte) error {
	if err := checkKeyName(name); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	return k.change(func(m map[string][]byte) { m[name] = append([]byte(nil), data...) })
}

// Remove deletes the secret under name; a missing one is not an error.
func (k *s3Keys) Remove(name string) error {
	if err := checkKeyName(name); err != nil {
		return fmt.Errorf("remove key: %w", err)
	}
	return k.change(func(m map[string][]byte) { delete(m, name) })
}

// RemoveAll deletes the secret named prefix and every one below it.
func (k *s3Keys) RemoveAll(prefix string) error {
	prefix = strings.TrimSuffix(prefix, "/")
	if err := checkKeyName(prefix); err != nil {
		return fmt.Errorf("remove keys: %w", err)
	}
	return k.change(func(m map[string][]byte) {
		for n := range m {
			if n == prefix || strings.HasPrefix(n, prefix+"/") {
				delete(m, n)
			}
		}
	})
}

// List returns every secret's name, sorted.
func (k *s3Keys) List() ([]string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	ctx, cancel := keyCtx()
	defer cancel()
	if err := k.load(ctx); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(k.secrets))
	for n := range k.secrets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

func (k *s3Keys) change(fn func(map[string][]byte)) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	ctx, cancel := keyCtx()
	defer cancel()
	if err := k.load(ctx); err != nil {
		return err
	}
	next := make(map[string][]byte, len(k.secrets)+1)
	for n, v := range k.secrets {
		next[n] = v
	}
	fn(next)
	if len(next) == len(k.secrets) {
		same := true
		for n := range next {
			if _, ok := k.secrets[n]; !ok || string(next[n]) != string(k.secrets[n]) {
				same = false
				break
			}
		}
		if same {
			return nil
		}
	}
	return k.save(ctx, next)
}

// checkKeyName applies the local store's rules for names.
func checkKeyName(name string) error {
	_, err := (&Keys{Dir: "/"}).path(name)
	return err
}

// kmsContext is the encryption context of the data key: the keys object's
// name, which KMS binds to the ciphertext and logs in CloudTrail.
func (k *s3Keys) kmsContext() map[string]string {
	return map[string]string{"skyward:keys": k.b.cfg.Bucket + "/" + k.object}
}

func (k *s3Keys) newDataKey() error {
	ctx, cancel := keyCtx()
	defer cancel()
	out, err := k.b.kms.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId: aws.String(k.b.cfg.KMSKeyID), KeySpec: kmstypes.DataKeySpecAes256, EncryptionContext: k.kmsContext(),
	})
	if err != nil {
		return err
	}
	k.dataKey, k.encryptedKey = out.Plaintext, out.CiphertextBlob
	return nil
}

func (k *s3Keys) decryptDataKey(blob []byte) ([]byte, error) {
	if k.dataKey != nil && string(blob) == string(k.encryptedKey) {
		return k.dataKey, nil
	}
	ctx, cancel := keyCtx()
	defer cancel()
	out, err := k.b.kms.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: k.kmsContext()})
	if err != nil {
		return nil, err
	}
	if len(out.Plaintext) != 32 {
		return nil, fmt.Errorf("KMS returned a %d-byte data key, want 32", len(out.Plaintext))
	}
	if k.b.cfg.KMSKeyID != "" {
		// Keep using this data key for the writes that follow.
		k.dataKey, k.encryptedKey = out.Plaintext, blob
	}
	return out.Plaintext, nil
}
