package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/google/uuid"
)

// S3Config is the `backend "s3"` block and what the environment adds.
type S3Config struct {
	// Bucket and Key name the state object; both are required. The lock
	// is Key.lock, the previous state Key.backup (when the bucket has no
	// versioning) and the encrypted keys Key.keys, all in Bucket.
	Bucket, Key string
	// Region defaults to the SDK's (AWS_REGION, the profile), then
	// us-east-1.
	Region string
	// Endpoint is an S3-compatible endpoint (an emulator); AWS_ENDPOINT_URL
	// is honoured by the SDK too. Either one selects path-style addressing.
	Endpoint string
	// Profile is a shared config profile; "" is the SDK's default chain.
	Profile string
	// KMSKeyID, when set, has the keys object encrypted with a data key
	// from this KMS key (id, ARN or alias/NAME) instead of StateKey. KMS is
	// reached at Endpoint too when it is set (an emulator serves both), or
	// at AWS_ENDPOINT_URL_KMS.
	KMSKeyID string
	// StateKey is the passphrase the keys object is encrypted with
	// (SKYWARD_STATE_KEY), at least 16 characters.
	StateKey string
}

// S3 is the backend "s3": the state, lock and keys are objects in a bucket.
//
// The state object is written with a conditional write: If-Match with the
// ETag this S3 last read or wrote, or If-None-Match: * when there was none,
// after checking that the state to write has the stored lineage and a
// serial not behind it. So a writer that did not see the latest state is
// refused even if it does not hold the lock. Before each write the previous
// state is kept: by the bucket's versioning when it is enabled, else as
// Key.backup.
//
// The keys object Key.keys is encrypted with AES-256-GCM under a key
// derived from StateKey with Argon2id, or under a KMS data key when
// KMSKeyID is set.
//
// The lock is the object Key.lock, created with If-None-Match: * and read
// back to check it holds this process's lock ID (in case the server did not
// honour the condition), and deleted with If-Match on its ETag, so an
// unlock never removes another holder's lock. A lock left by a dead process
// stays until ForceUnlock removes it.
//
// An S3 is safe for concurrent use; writes must still be serialized by the
// caller, who holds the lock.
type S3 struct {
	cfg    S3Config
	client *s3API
	kms    *kmsAPI

	mu sync.Mutex
	// What this S3 last read or wrote of the state object; known is false
	// until it has looked.
	known   bool
	etag    string // "" when there is no state object
	data    []byte
	serial  uint64
	lineage string
	// versioned caches GetBucketVersioning: nil until asked.
	versioned *bool

	keys *s3Keys
}

var _ Backend = (*S3)(nil)

// NewS3 returns the backend for cfg. It checks the configuration and loads
// the AWS SDK's configuration (credentials are resolved when first used);
// it does not contact the bucket: Check does.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	switch {
	case cfg.Bucket == "":
		return nil, errors.New(`backend "s3": bucket is required`)
	case cfg.Key == "":
		return nil, errors.New(`backend "s3": key is required`)
	case strings.HasSuffix(cfg.Key, "/"):
		return nil, fmt.Errorf(`backend "s3": key %q must name an object, not end in "/"`, cfg.Key)
	}
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf(`backend "s3": load AWS configuration: %w`, err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	_, envEndpoint := os.LookupEnv("AWS_ENDPOINT_URL")
	_, envS3Endpoint := os.LookupEnv("AWS_ENDPOINT_URL_S3")
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		// Emulators and S3-compatible stores rarely resolve
		// bucket.host names; AWS accepts path style too.
		o.UsePathStyle = cfg.Endpoint != "" || envEndpoint || envS3Endpoint
		// Objects skyward wrote are read whole and parsed; a missing
		// response checksum is no news worth a line on stderr.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	kmsClient := kms.NewFromConfig(awsCfg, func(o *kms.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	b := &S3{cfg: cfg, client: newS3API(client), kms: newKMSAPI(kmsClient)}
	b.keys = &s3Keys{b: b, object: cfg.Key + ".keys", passphrase: cfg.StateKey}
	return b, nil
}

// String is s3://bucket/key.
func (b *S3) String() string { return "s3://" + b.cfg.Bucket + "/" + b.cfg.Key }

// LockPath is the lock object, s3://bucket/key.lock.
func (b *S3) LockPath() string { return b.String() + ".lock" }

// Check makes sure the bucket can be reached and used. Its error is one
// line: the bucket does not exist, access is forbidden, or the endpoint
// cannot be reached, with the cause.
func (b *S3) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err := b.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b.cfg.Bucket)})
	if err == nil {
		return nil
	}
	where := fmt.Sprintf("bucket %q", b.cfg.Bucket)
	if b.cfg.Endpoint != "" {
		where += " at " + b.cfg.Endpoint
	}
	switch status(err) {
	case 404:
		return fmt.Errorf(`backend "s3": %s does not exist; create it (with versioning, so that every state is kept) or fix bucket in the skyward block`, where)
	case 401, 403:
		return fmt.Errorf(`backend "s3": access to %s is forbidden (HTTP %d): check the credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID) and the bucket policy`, where, status(err))
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf(`backend "s3": %s cannot be reached: %s`, where, oneLine(rootCause(err)))
	}
	return fmt.Errorf(`backend "s3": %s cannot be used: %s`, where, oneLine(err))
}

// Read returns the state object, or (nil, nil) when there is none. It
// records the object's ETag for the conditional write that follows.
func (b *S3) Read(ctx context.Context) (*State, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.readLocked(ctx)
}

func (b *S3) readLocked(ctx context.Context) (*State, error) {
	data, etag, err := b.get(ctx, b.cfg.Key)
	if errors.Is(err, errNoObject) {
		b.known, b.etag, b.data, b.serial, b.lineage = true, "", nil, 0, ""
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state %s: %w", b, err)
	}
	s, err := decodeState(data, b.String())
	if err != nil {
		return nil, err
	}
	b.known, b.etag, b.data, b.serial, b.lineage = true, etag, data, s.Serial, s.Lineage
	return s, nil
}

// Write saves s as the state object (see S3 for the checks). It raises
// s.Serial by one and sets s.Version; on error the stored state and s are
// unchanged.
func (b *S3) Write(s *State) error {
	if s == nil {
		return errors.New("state: Write of a nil state")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if !b.known {
		if _, err := b.readLocked(ctx); err != nil {
			return fmt.Errorf("write state: %w", err)
		}
	}
	if b.etag != "" {
		switch {
		case s.Lineage != b.lineage:
			return fmt.Errorf("write state %s: the stored state has lineage %s, not %s: it is another state; nothing was written", b, b.lineage, s.Lineage)
		case s.Serial < b.serial:
			return fmt.Errorf("write state %s: the stored state has serial %d, newer than the %d this command read; nothing was written: run the command again", b, b.serial, s.Serial)
		}
	}
	out, data, err := encodeNext(s)
	if err != nil {
		return err
	}

	if b.etag != "" && !b.isVersioned(ctx) {
		if _, err := b.put(ctx, b.cfg.Key+".backup", b.data, nil); err != nil {
			return fmt.Errorf("write state %s: backup: %w", b, err)
		}
	}
	cond := &condition{ifMatch: b.etag, ifNoneMatch: b.etag == ""}
	etag, err := b.put(ctx, b.cfg.Key, data, cond)
	if errors.Is(err, errPrecondition) {
		b.known = false
		return fmt.Errorf("write state %s: the state was changed by another writer since this command read it (serial %d); nothing was written: run the command again", b, b.serial)
	}
	if err != nil {
		return fmt.Errorf("write state %s: %w", b, err)
	}
	b.etag, b.data, b.serial, b.lineage = etag, data, out.Serial, out.Lineage
	s.Serial, s.Version = out.Serial, out.Version
	return nil
}

// isVersioned reports whether the bucket keeps every version of an object;
// when it cannot tell it says no, so that Key.backup is written.
func (b *S3) isVersioned(ctx context.Context) bool {
	if b.versioned == nil {
		out, err := b.client.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(b.cfg.Bucket)})
		v := err == nil && out.Status == s3types.BucketVersioningStatusEnabled
		b.versioned = &v
	}
	return *b.versioned
}

// Lock creates the lock object Key.lock with If-None-Match: *, holding
// info with a fresh ID and the state's path. While another holder has it,
// it tries again every two seconds until timeout passes or ctx ends; then
// the error is a *LockedError with the holder's lock info.
func (b *S3) Lock(ctx context.Context, info LockInfo, timeout time.Duration) (Unlocker, error) {
	info.ID = uuid.NewString()
	info.Path = b.cfg.Bucket + "/" + b.cfg.Key
	body, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("lock state: %w", err)
	}
	body = append(body, '\n')
	start := time.Now()
	retry := s3LockRetry
	for {
		lk, holder, err := b.tryLock(ctx, info.ID, body)
		if err != nil || lk != nil {
			return lk, err
		}
		waited := time.Since(start)
		if waited >= timeout || ctx.Err() != nil {
			lerr := &LockedError{Path: b.LockPath(), Holder: holder}
			if timeout > 0 {
				lerr.Waited = waited
			}
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%w (%w)", lerr, ctx.Err())
			}
			return nil, lerr
		}
		t := time.NewTimer(min(retry, timeout-waited))
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// s3LockRetry is how often Lock tries again while it waits.
var s3LockRetry = 2 * time.Second

// tryLock tries once. It returns the lock, or the holder's info when
// another process has it (nil when it could not be read), or an error.
func (b *S3) tryLock(ctx context.Context, id string, body []byte) (Unlocker, *LockInfo, error) {
	lockKey := b.cfg.Key + ".lock"
	_, err := b.put(ctx, lockKey, body, &condition{ifNoneMatch: true})
	if err != nil && !errors.Is(err, errPrecondition) {
		return nil, nil, fmt.Errorf("lock state %s: %w", b, err)
	}
	// Read back in both cases: a server that ignores If-None-Match lets
	// a second writer overwrite the lock, and the loser must see that.
	holder, etag, rerr := b.lockHolder(ctx)
	if rerr != nil && !errors.Is(rerr, errNoObject) {
		return nil, nil, fmt.Errorf("lock state %s: read the lock back: %w", b, rerr)
	}
	if err == nil && holder != nil && holder.ID == id {
		return &s3Lock{b: b, etag: etag, id: id}, nil, nil
	}
	if holder == nil && errors.Is(rerr, errNoObject) {
		// Released between our attempt and the read: try again at once.
		return b.tryLock(ctx, id, body)
	}
	return nil, holder, nil
}

// lockHolder reads the lock object. The info is nil when it does not
// parse; the error wraps errNoObject when there is no lock.
func (b *S3) lockHolder(ctx context.Context) (*LockInfo, string, error) {
	data, etag, err := b.get(ctx, b.cfg.Key+".lock")
	if err != nil {
		return nil, "", err
	}
	var info LockInfo
	if json.Unmarshal(data, &info) != nil {
		return nil, etag, nil
	}
	return &info, etag, nil
}

// Holder returns the info of the lock held now, or nil when the state is
// not locked.
func (b *S3) Holder(ctx context.Context) (*LockInfo, error) {
	info, _, err := b.lockHolder(ctx)
	if errors.Is(err, errNoObject) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lock %s: %w", b.LockPath(), err)
	}
	if info == nil {
		return &LockInfo{}, nil
	}
	return info, nil
}

// ForceUnlock removes the lock with the given ID, left by a process that
// died. It refuses when there is no lock or it has another ID, and deletes
// with If-Match so that a lock taken in the meantime stays.
func (b *S3) ForceUnlock(ctx context.Context, id string) error {
	info, etag, err := b.lockHolder(ctx)
	switch {
	case errors.Is(err, errNoObject):
		return fmt.Errorf("the state %s is not locked; nothing to unlock", b)
	case err != nil:
		return fmt.Errorf("read lock %s: %w", b.LockPath(), err)
	case info == nil || info.ID != id:
		held := "a lock that cannot be parsed"
		if info != nil {
			held = fmt.Sprintf("lock %s", info.ID)
		}
		return fmt.Errorf("lock ID %q does not match the state's %s; nothing was removed", id, held)
	}
	if err := b.delete(ctx, b.cfg.Key+".lock", etag); err != nil {
		if errors.Is(err, errPrecondition) {
			return fmt.Errorf("the lock %s changed while it was being removed; nothing was removed", b.LockPath())
		}
		return fmt.Errorf("remove lock %s: %w", b.LockPath(), err)
	}
	return nil
}

// s3Lock is a held lock object.
type s3Lock struct {
	b    *S3
	etag string
	id   string
	done bool
}

// Unlock deletes the lock object if it is still this lock (If-Match on its
// ETag).
func (l *s3Lock) Unlock() error {
	if l == nil || l.done {
		return nil
	}
	l.done = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := l.b.delete(ctx, l.b.cfg.Key+".lock", l.etag)
	switch {
	case err == nil, errors.Is(err, errNoObject):
		return nil
	case errors.Is(err, errPrecondition):
		return fmt.Errorf("unlock state: %s is no longer lock %s (it was force-unlocked and taken again); it was left alone", l.b.LockPath(), l.id)
	}
	return fmt.Errorf("unlock state %s: %w", l.b.LockPath(), err)
}

// Keys returns the encrypted keys object beside the state.
func (b *S3) Keys() KeyStore { return b.keys }

// Errors of the object operations.
var (
	errNoObject     = errors.New("no such object")
	errPrecondition = errors.New("precondition failed")
)

// condition is a conditional write: If-Match on an ETag or If-None-Match: *.
type condition struct {
	ifMatch     string
	ifNoneMatch bool
}

func (b *S3) get(ctx context.Context, key string) ([]byte, string, error) {
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.cfg.Bucket), Key: aws.String(key)})
	if err != nil {
		return nil, "", classify(err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, "", err
	}
	return data, aws.ToString(out.ETag), nil
}

func (b *S3) put(ctx context.Context, key string, data []byte, c *condition) (string, error) {
	in := &s3.PutObjectInput{
		Bucket:        aws.String(b.cfg.Bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentType:   aws.String("application/json"),
	}
	if c != nil {
		if c.ifMatch != "" {
			in.IfMatch = aws.String(c.ifMatch)
		}
		if c.ifNoneMatch {
			in.IfNoneMatch = aws.String("*")
		}
	}
	out, err := b.client.PutObject(ctx, in)
	if err != nil {
		return "", classify(err)
	}
	return aws.ToString(out.ETag), nil
}

func (b *S3) delete(ctx context.Context, key, ifMatch string) error {
	in := &s3.DeleteObjectInput{Bucket: aws.String(b.cfg.Bucket), Key: aws.String(key)}
	if ifMatch != "" {
		in.IfMatch = aws.String(ifMatch)
	}
	_, err := b.client.DeleteObject(ctx, in)
	return classify(err)
}

// classify maps S3's answers to errNoObject and errPrecondition (412, and
// the 409 S3 gives to a conditional write that raced another).
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return fmt.Errorf("%w: %w", errNoObject, err)
		case "PreconditionFailed", "ConditionalRequestConflict":
			return fmt.Errorf("%w: %w", errPrecondition, err)
		}
	}
	switch status(err) {
	case 412, 409:
		return fmt.Errorf("%w: %w", errPrecondition, err)
	}
	return err
}

// status is the HTTP status of an S3 error, or 0.
func status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// decodeState parses a state document read from where, as File.Read does.
func decodeState(data []byte, where string) (*State, error) {
	var head struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("state %s cannot be parsed: %w", where, err)
	}
	switch {
	case head.Version == nil:
		return nil, fmt.Errorf("state %s has no format version", where)
	case *head.Version > FormatVersion:
		return nil, fmt.Errorf("state %s has format version %d, newer than this skyward supports (%d); upgrade skyward",
			where, *head.Version, FormatVersion)
	case *head.Version < 1:
		return nil, fmt.Errorf("state %s has invalid format version %d", where, *head.Version)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("state %s cannot be parsed: %w", where, err)
	}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("state %s is invalid: %w", where, err)
	}
	return &s, nil
}
