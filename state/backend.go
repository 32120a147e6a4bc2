package state

import (
	"context"
	"time"
)

// Backend is where a working directory keeps its state, the lock that
// serializes its writers and its secrets. Local (the default) is today's
// .skyward directory; S3 keeps all three in a bucket.
//
// Read, Write and the KeyStore may be called from several goroutines, but
// writes must be serialized by the caller, who holds the lock.
type Backend interface {
	// Read returns the current state, or (nil, nil) when there is none.
	Read(ctx context.Context) (*State, error)
	// Write saves s, raising s.Serial by one and setting s.Version, with
	// the previous state kept. It fails, and leaves the stored state as it
	// was, when the stored state is not the one this backend last read or
	// wrote (another writer got in between) or belongs to another lineage.
	Write(s *State) error
	// Lock takes the state lock for info.Command, waiting up to timeout
	// (0: fail at once) while another holder has it. A held lock is a
	// *LockedError naming the holder.
	Lock(ctx context.Context, info LockInfo, timeout time.Duration) (Unlocker, error)
	// Keys is the secrets store beside the state.
	Keys() KeyStore
	// String names the backend and where the state is, for messages:
	// ".skyward/state.json", "s3://bucket/key".
	String() string
}

// Unlocker is a held state lock.
type Unlocker interface {
	// Unlock releases the lock; calling it again does nothing.
	Unlock() error
}

// KeyStore holds secrets (SSH private keys, cluster tokens) by name, a
// slash-separated relative path ("dev/id_ed25519"). A missing secret is an
// error that wraps fs.ErrNotExist. Implementations never store them in
// clear outside the machine that runs skyward.
type KeyStore interface {
	Read(name string) ([]byte, error)
	Write(name string, data []byte) error
	Remove(name string) error
	// RemoveAll removes the secret named prefix and every secret below it.
	RemoveAll(prefix string) error
	// List returns the names of every secret, sorted.
	List() ([]string, error)
}

var (
	_ Unlocker = (*Lock)(nil)
	_ KeyStore = (*Keys)(nil)
	_ Backend  = (*Local)(nil)
)

// Local is the default backend: the state file, its OS lock and the keys
// directory in a .skyward directory, exactly as File and Keys keep them.
type Local struct {
	File File
}

// NewLocal returns the local backend of the .skyward directory dir.
func NewLocal(dir string) *Local { return &Local{File: File{Dir: dir}} }

// Read reads Dir/state.json; ctx is not used (a local read does not block).
func (l *Local) Read(ctx context.Context) (*State, error) { return l.File.Read() }

// Write writes Dir/state.json as File.Write does.
func (l *Local) Write(s *State) error { return l.File.Write(s) }

// Lock takes Dir/state.lock as File.Lock does.
func (l *Local) Lock(ctx context.Context, info LockInfo, timeout time.Duration) (Unlocker, error) {
	lk, err := l.File.Lock(ctx, info, timeout)
	if err != nil {
		return nil, err
	}
	return lk, nil
}

// Keys returns Dir/keys.
func (l *Local) Keys() KeyStore { return l.File.Keys() }

// String is the path of the state file.
func (l *Local) String() string { return l.File.Path() }
