package state

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"

	"github.com/skyward-sh/skyward/internal/mototest"
)

const testPassphrase = "correct horse battery staple"

// moto is one server for every S3 test of the package, started by the
// first test that needs it.
var moto struct {
	once sync.Once
	srv  *mototest.Server
	err  error
}

func motoServer(t *testing.T) *mototest.Server {
	t.Helper()
	mototest.Require(t)
	moto.once.Do(func() { moto.srv, moto.err = mototest.Start() })
	if moto.err != nil {
		t.Fatal(moto.err)
	}
	for _, kv := range mototest.Env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return moto.srv
}

func TestMain(m *testing.M) {
	code := m.Run()
	moto.srv.Stop()
	os.Exit(code)
}

func newBucket(t *testing.T, versioned bool) (*mototest.Server, string) {
	t.Helper()
	srv := motoServer(t)
	name, err := srv.Bucket("state-test", versioned)
	if err != nil {
		t.Fatal(err)
	}
	return srv, name
}

func newS3(t *testing.T, srv *mototest.Server, bucket string) *S3 {
	t.Helper()
	b, err := NewS3(context.Background(), S3Config{Bucket: bucket, Key: "ci/state.json", Endpoint: srv.Endpoint, StateKey: testPassphrase})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func getObject(t *testing.T, srv *mototest.Server, bucket, key string) ([]byte, error) {
	t.Helper()
	out, err := srv.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// TestMotoConditionalWrites pins what the emulator honours, since the
// backend's tests rely on it: If-None-Match: * and If-Match on PutObject,
// If-Match on DeleteObject.
func TestMotoConditionalWrites(t *testing.T) {
	srv, bucket := newBucket(t, false)
	b := newS3(t, srv, bucket)
	ctx := context.Background()
	etag, err := b.put(ctx, "obj", []byte("one"), &condition{ifNoneMatch: true})
	if err != nil {
		t.Fatalf("first put with If-None-Match: *: %v", err)
	}
	if _, err := b.put(ctx, "obj", []byte("two"), &condition{ifNoneMatch: true}); !errors.Is(err, errPrecondition) {
		t.Errorf("second put with If-None-Match: * = %v, want a precondition failure", err)
	}
	if _, err := b.put(ctx, "obj", []byte("two"), &condition{ifMatch: `"0123"`}); !errors.Is(err, errPrecondition) {
		t.Errorf("put with a stale If-Match = %v, want a precondition failure", err)
	}
	etag2, err := b.put(ctx, "obj", []byte("two"), &condition{ifMatch: etag})
	if err != nil {
		t.Fatalf("put with the current If-Match: %v", err)
	}
	if err := b.delete(ctx, "obj", etag); !errors.Is(err, errPrecondition) {
		t.Errorf("delete with a stale If-Match = %v, want a precondition failure", err)
	}
	if err := b.delete(ctx, "obj", etag2); err != nil {
		t.Errorf("delete with the current If-Match: %v", err)
	}
}

func TestS3ReadWrite(t *testing.T) {
	srv, bucket := newBucket(t, false)
	one, two := newS3(t, srv, bucket), newS3(t, srv, bucket)
	ctx := context.Background()

	if st, err := one.Read(ctx); err != nil || st != nil {
		t.Fatalf("Read of no state = %v, %v; want nil, nil", st, err)
	}
	st := New("lineage-1")
	if err := one.Write(st); err != nil {
		t.Fatal(err)
	}
	st.Set(&Resource{Address: "pool.dev", Type: "pool", Pool: "dev", Status: StatusReady})
	if err := one.Write(st); err != nil {
		t.Fatal(err)
	}
	if st.Serial != 2 {
		t.Errorf("serial after two writes = %d, want 2", st.Serial)
	}

	// A second working directory sees the same state.
	got, err := two.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(st, got); diff != "" {
		t.Errorf("second reader (-want +got):\n%s", diff)
	}

	// Without versioning, the previous state is kept as KEY.backup.
	backup, err := getObject(t, srv, bucket, "ci/state.json.backup")
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	prev, err := decodeState(backup, "backup")
	if err != nil || prev.Serial != 1 {
		t.Errorf("backup = %+v, %v; want serial 1", prev, err)
	}

	// The second writes; the first, which has not seen that, is refused
	// and the stored state stays the second's.
	got.Set(&Resource{Address: "pool.other", Type: "pool", Pool: "other", Status: StatusReady})
	if err := two.Write(got); err != nil {
		t.Fatal(err)
	}
	stale := st.DeepCopy()
	stale.Remove("pool.dev")
	err = one.Write(stale)
	if err == nil || !strings.Contains(err.Error(), "changed by another writer") {
		t.Fatalf("stale write = %v, want it refused", err)
	}
	if now, _ := newS3(t, srv, bucket).Read(ctx); now.Serial != 3 || now.Get("pool.other") == nil {
		t.Errorf("after the refused write the state is %+v", now)
	}

	// Another lineage is refused too.
	three := newS3(t, srv, bucket)
	if _, err := three.Read(ctx); err != nil {
		t.Fatal(err)
	}
	other := New("lineage-2")
	other.Serial = 3
	if err := three.Write(other); err == nil || !strings.Contains(err.Error(), "lineage") {
		t.Errorf("write of another lineage = %v, want it refused", err)
	}
}

func TestS3VersionedKeepsVersions(t *testing.T) {
	srv, bucket := newBucket(t, true)
	b := newS3(t, srv, bucket)
	st := New("l")
	for range 3 {
		if err := b.Write(st); err != nil {
			t.Fatal(err)
		}
	}
	out, err := srv.Client().ListObjectVersions(context.Background(), &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range out.Versions {
		if aws.ToString(v.Key) == "ci/state.json" {
			n++
		}
		if strings.HasSuffix(aws.ToString(v.Key), ".backup") {
			t.Errorf("versioned bucket has %s", aws.ToString(v.Key))
		}
	}
	if n != 3 {
		t.Errorf("%d versions of the state, want 3", n)
	}
}

func TestS3Lock(t *testing.T) {
	srv, bucket := newBucket(t, false)
	one, two := newS3(t, srv, bucket), newS3(t, srv, bucket)
	ctx := context.Background()
	info := LockInfo{PID: 42, Command: "skyward apply", Operation: "apply", Who: "ci@runner", Version: "0.1.0", Created: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}

	lk, err := one.Lock(ctx, info, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = two.Lock(ctx, LockInfo{Command: "skyward plan"}, 0)
	var le *LockedError
	if !errors.As(err, &le) || le.Holder == nil {
		t.Fatalf("second Lock = %v, want a LockedError with the holder", err)
	}
	id := le.Holder.ID
	msg := err.Error()
	for _, want := range []string{"Error acquiring the state lock", "Lock Info:", "  ID:        " + id, "  Path:      " + bucket + "/ci/state.json",
		"  Operation: apply", "  Who:       ci@runner", "  Created:   2026-12-01 09:00:00 +0000 UTC", "skyward force-unlock " + id} {
		if !strings.Contains(msg, want) {
			t.Errorf("lock error lacks %q:\n%s", want, msg)
		}
	}

	// A waiter gets the lock once it is released.
	s3LockRetry = 100 * time.Millisecond
	t.Cleanup(func() { s3LockRetry = 2 * time.Second })
	go func() {
		time.Sleep(300 * time.Millisecond)
		lk.Unlock()
	}()
	start := time.Now()
	lk2, err := two.Lock(ctx, LockInfo{Command: "skyward apply"}, 10*time.Second)
	if err != nil {
		t.Fatalf("Lock with a timeout: %v", err)
	}
	if time.Since(start) < 200*time.Millisecond {
		t.Errorf("Lock did not wait for the holder")
	}
	// A timeout that passes is a LockedError that says it waited.
	_, err = one.Lock(ctx, LockInfo{Command: "skyward apply"}, 300*time.Millisecond)
	if !errors.As(err, &le) || le.Waited == 0 || !strings.Contains(err.Error(), "gave up after waiting") {
		t.Errorf("Lock that times out = %v", err)
	}

	// force-unlock: a wrong ID is refused, the right one removes the lock.
	holder, err := one.Holder(ctx)
	if err != nil || holder == nil {
		t.Fatalf("Holder = %v, %v", holder, err)
	}
	if err := one.ForceUnlock(ctx, "not-the-id"); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("ForceUnlock with a wrong ID = %v", err)
	}
	if err := one.ForceUnlock(ctx, holder.ID); err != nil {
		t.Fatal(err)
	}
	if h, err := one.Holder(ctx); h != nil || err != nil {
		t.Errorf("after force-unlock Holder = %v, %v", h, err)
	}
	// The one whose lock was removed must not remove the next holder's.
	lk3, err := one.Lock(ctx, LockInfo{Command: "skyward apply"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := lk2.Unlock(); err == nil || !strings.Contains(err.Error(), "left alone") {
		t.Errorf("Unlock of a force-unlocked lock = %v", err)
	}
	if h, _ := one.Holder(ctx); h == nil {
		t.Errorf("the new holder's lock was removed")
	}
	if err := lk3.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := one.ForceUnlock(ctx, "x"); err == nil || !strings.Contains(err.Error(), "not locked") {
		t.Errorf("ForceUnlock with no lock = %v", err)
	}
}

// TestS3LockRace: of many processes that try at once, one gets the lock.
func TestS3LockRace(t *testing.T) {
	srv, bucket := newBucket(t, false)
	ctx := context.Background()
	var mu sync.Mutex
	var got []Unlocker
	var wg sync.WaitGroup
	for range 8 {
		b := newS3(t, srv, bucket)
		wg.Add(1)
		go func() {
			defer wg.Done()
			lk, err := b.Lock(ctx, LockInfo{Command: "skyward apply"}, 0)
			var le *LockedError
			if err != nil && !errors.As(err, &le) {
				t.Error(err)
			}
			if lk != nil {
				mu.Lock()
				got = append(got, lk)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(got) != 1 {
		t.Errorf("%d processes hold the lock, want 1", len(got))
	}
}

func TestS3Keys(t *testing.T) {
	srv, bucket := newBucket(t, false)
	b := newS3(t, srv, bucket)
	secret := []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-material-123\n-----END OPENSSH PRIVATE KEY-----\n")
	ks := b.Keys()
	if err := ks.Write("dev/id_ed25519", secret); err != nil {
		t.Fatal(err)
	}
	if err := ks.Write("dev/token", []byte("tok-abcdef")); err != nil {
		t.Fatal(err)
	}
	if err := ks.Write("dev/node-0/ssh_host_ed25519_key", []byte("host")); err != nil {
		t.Fatal(err)
	}

	// Another directory with the passphrase reads them.
	other := newS3(t, srv, bucket).Keys()
	got, err := other.Read("dev/id_ed25519")
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Read = %q, %v", got, err)
	}
	if _, err := other.Read("dev/nothing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Read of a missing key = %v, want ErrNotExist", err)
	}
	names, err := other.List()
	if diff := cmp.Diff([]string{"dev/id_ed25519", "dev/node-0/ssh_host_ed25519_key", "dev/token"}, names); err != nil || diff != "" {
		t.Errorf("List (-want +got): %s %v", diff, err)
	}

	// The object in the bucket holds no secret in clear, nor base64 of it.
	raw, err := getObject(t, srv, bucket, "ci/state.json.keys")
	if err != nil {
		t.Fatal(err)
	}
	for _, clear := range [][]byte{secret, []byte("secret-material-123"), []byte("tok-abcdef"),
		[]byte(base64.StdEncoding.EncodeToString(secret)), []byte(base64.StdEncoding.EncodeToString([]byte("tok-abcdef")))} {
		if bytes.Contains(raw, clear) {
			t.Errorf("the keys object contains %q in clear", clear)
		}
	}
	if bytes.Contains(raw, []byte("id_ed25519")) {
		t.Errorf("the keys object names its secrets in clear")
	}

	if err := ks.RemoveAll("dev/node-0"); err != nil {
		t.Fatal(err)
	}
	if names, _ := newS3(t, srv, bucket).Keys().List(); len(names) != 2 {
		t.Errorf("after RemoveAll: %q", names)
	}

	// A wrong or missing passphrase cannot read them.
	wrong, err := NewS3(context.Background(), S3Config{Bucket: bucket, Key: "ci/state.json", Endpoint: srv.Endpoint, StateKey: "not the passphrase at all"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.Keys().Read("dev/token"); err == nil || !strings.Contains(err.Error(), "cannot decrypt") {
		t.Errorf("Read with a wrong passphrase = %v", err)
	}
	none, _ := NewS3(context.Background(), S3Config{Bucket: bucket, Key: "ci/state.json", Endpoint: srv.Endpoint})
	if _, err := none.Keys().Read("dev/token"); err == nil || !strings.Contains(err.Error(), "SKYWARD_STATE_KEY") {
		t.Errorf("Read without a passphrase = %v", err)
	}
	short, _ := NewS3(context.Background(), S3Config{Bucket: bucket, Key: "ci/state.json", Endpoint: srv.Endpoint, StateKey: "short"})
	if err := short.Keys().Write("x", nil); err == nil || !strings.Contains(err.Error(), "at least 16") {
		t.Errorf("Write with a short passphrase = %v", err)
	}
}

func TestS3KeysKMS(t *testing.T) {
	srv, bucket := newBucket(t, false)
	ctx := context.Background()
	kc := kms.New(kms.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.Endpoint),
		Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "testing", SecretAccessKey: "testing"}, nil
		}))})
	key, err := kc.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(key.KeyMetadata.KeyId)
	open := func(key string) *S3 {
		b, err := NewS3(ctx, S3Config{Bucket: bucket, Key: key, Endpoint: srv.Endpoint, KMSKeyID: id})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	secret := []byte("kms-protected-secret-456")
	if err := open("ci/state.json").Keys().Write("dev/token", secret); err != nil {
		t.Fatal(err)
	}
	got, err := open("ci/state.json").Keys().Read("dev/token")
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Read = %q, %v", got, err)
	}
	raw, err := getObject(t, srv, bucket, "ci/state.json.keys")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, secret) || bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString(secret))) {
		t.Errorf("the keys object holds the secret in clear")
	}
	if !bytes.Contains(raw, []byte(`"name": "aws-kms"`)) || !bytes.Contains(raw, []byte(id)) {
		t.Errorf("the keys object does not name its KMS key:\n%s", raw)
	}
	// The same object under another name does not decrypt: the
	// encryption context binds it to its place.
	if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("other.json.keys"), Body: bytes.NewReader(raw)}); err != nil {
		t.Fatal(err)
	}
	if _, err := open("other.json").Keys().Read("dev/token"); err == nil {
		t.Errorf("a keys object copied to another state decrypted")
	}
}

func TestS3Check(t *testing.T) {
	srv, bucket := newBucket(t, false)
	forbidden := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
	}))
	defer forbidden.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	tests := map[string]struct {
		bucket, endpoint string
		want             string // "" for no error
	}{
		"ok":          {bucket, srv.Endpoint, ""},
		"missing":     {"no-such-bucket-here", srv.Endpoint, `bucket "no-such-bucket-here" at ` + srv.Endpoint + ` does not exist`},
		"forbidden":   {"locked-away", forbidden.URL, `access to bucket "locked-away" at ` + forbidden.URL + ` is forbidden (HTTP 403)`},
		"unreachable": {"b", closed.URL, `bucket "b" at ` + closed.URL + ` cannot be reached: `},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := NewS3(context.Background(), S3Config{Bucket: tc.bucket, Key: "k", Endpoint: tc.endpoint})
			if err != nil {
				t.Fatal(err)
			}
			err = b.Check(context.Background())
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Check = %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Check = %v, want %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), "\n"):
				t.Errorf("Check error is not one line: %q", err)
			}
		})
	}
}

func TestNewS3Config(t *testing.T) {
	tests := map[string]struct {
		cfg  S3Config
		want string
	}{
		"no bucket": {S3Config{Key: "k"}, "bucket is required"},
		"no key":    {S3Config{Bucket: "b"}, "key is required"},
		"dir key":   {S3Config{Bucket: "b", Key: "a/"}, "must name an object"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := NewS3(context.Background(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewS3 = %v, want %q", err, tc.want)
			}
		})
	}
}
