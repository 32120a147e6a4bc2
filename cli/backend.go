package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/skyward-sh/skyward/hclspec"
	"github.com/skyward-sh/skyward/state"
)

// stateKeyEnv holds the passphrase the s3 backend encrypts keys with.
const stateKeyEnv = "SKYWARD_STATE_KEY"

// backendRecordName is where init records the backend it set up, so that a
// changed backend block is noticed (Terraform keeps the same in
// .terraform/terraform.tfstate).
const backendRecordName = "backend.json"

// backendRecord is a backend's configuration without secrets.
type backendRecord struct {
	Type     string `json:"type"`
	Bucket   string `json:"bucket,omitempty"`
	Key      string `json:"key,omitempty"`
	Region   string `json:"region,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
	Profile  string `json:"profile,omitempty"`
	KMSKeyID string `json:"kms_key_id,omitempty"`
}

func recordOf(be *hclspec.Backend) backendRecord {
	if be == nil || be.Type == "local" {
		return backendRecord{Type: "local"}
	}
	return backendRecord{Type: be.Type, Bucket: be.Bucket, Key: be.Key, Region: be.Region, Endpoint: be.Endpoint, Profile: be.Profile, KMSKeyID: be.KMSKeyID}
}

func (r backendRecord) String() string {
	if r.Type == "local" {
		return "the local backend (" + filepath.Join(dataDir, "state.json") + ")"
	}
	return fmt.Sprintf("backend %q (s3://%s/%s)", r.Type, r.Bucket, r.Key)
}

func (m *Meta) backendRecordPath() string { return filepath.Join(m.Dir, dataDir, backendRecordName) }

// readBackendRecord returns what init recorded, or nil.
func (m *Meta) readBackendRecord() (*backendRecord, error) {
	b, err := os.ReadFile(m.backendRecordPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r backendRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", m.backendRecordPath(), err)
	}
	return &r, nil
}

func (m *Meta) writeBackendRecord(r backendRecord) error {
	b, _ := json.MarshalIndent(r, "", "  ")
	if err := os.MkdirAll(filepath.Join(m.Dir, dataDir), 0o700); err != nil {
		return err
	}
	return os.WriteFile(m.backendRecordPath(), append(b, '\n'), 0o600)
}

// configuredBackend reads the skyward block alone, printing its
// diagnostics; nil means local.
func (m *Meta) configuredBackend() (*hclspec.Backend, error) {
	be, diags := hclspec.LoadBackend(m.Dir)
	if len(diags) > 0 {
		m.printDiags(nil, diags)
	}
	if diags.HasErrors() {
		return nil, errSilent
	}
	return be, nil
}

// backend returns the working directory's state backend, built once per
// command from the config's skyward block.
func (m *Meta) backend() (state.Backend, error) {
	if m.be != nil || m.beErr != nil {
		return m.be, m.beErr
	}
	m.be, m.beErr = m.openBackend()
	return m.be, m.beErr
}

func (m *Meta) openBackend() (state.Backend, error) {
	cfg, err := m.configuredBackend()
	if err != nil {
		return nil, err
	}
	want := recordOf(cfg)
	rec, err := m.readBackendRecord()
	if err != nil {
		return nil, err
	}
	switch {
	case rec != nil && *rec != want:
		return nil, fmt.Errorf("backend configuration changed: this directory was initialized with %s and the config now has %s; run skyward init -migrate-state to move the state there, or skyward init -reconfigure to use it as it is", rec, want)
	case rec == nil && want.Type != "local":
		// A local state with resources would be left behind unseen.
		if st, err := m.localBackend().Read(m.Ctx); err == nil && st != nil && len(st.Resources) > 0 {
			return nil, fmt.Errorf("the config has %s but the local state %s holds %d resources: run skyward init -migrate-state to move it there", want, filepath.Join(dataDir, "state.json"), len(st.Resources))
		}
	}
	return m.backendFor(want)
}

func (m *Meta) localBackend() *state.Local { return state.NewLocal(filepath.Join(m.Dir, dataDir)) }

// backendFor builds the backend a record describes.
func (m *Meta) backendFor(r backendRecord) (state.Backend, error) {
	switch r.Type {
	case "local":
		return m.localBackend(), nil
	case "s3":
		return state.NewS3(m.Ctx, state.S3Config{
			Bucket: r.Bucket, Key: r.Key, Region: r.Region, Endpoint: r.Endpoint, Profile: r.Profile,
			KMSKeyID: r.KMSKeyID, StateKey: os.Getenv(stateKeyEnv),
		})
	}
	return nil, fmt.Errorf("unknown backend type %q", r.Type)
}

// failingKeys is the KeyStore of a backend that could not be opened.
type failingKeys struct{ err error }

func (f failingKeys) Read(string) ([]byte, error) { return nil, f.err }
func (f failingKeys) Write(string, []byte) error  { return f.err }
func (f failingKeys) Remove(string) error         { return f.err }
func (f failingKeys) RemoveAll(string) error      { return f.err }
func (f failingKeys) List() ([]string, error)     { return nil, f.err }
func (m *Meta) keys() state.KeyStore {
	be, err := m.backend()
	if err != nil {
		return failingKeys{err}
	}
	return be.Keys()
}

// writeState writes the state through the backend.
func (m *Meta) writeState(st *state.State) error {
	be, err := m.backend()
	if err != nil {
		return err
	}
	return be.Write(st)
}

// initBackend sets up the config's backend for init: it checks that the
// bucket can be used, moves the state from the backend the directory was
// initialized with when migrate is set, and records the backend.
func (m *Meta) initBackend(cfg *hclspec.Config, migrate, reconfigure bool, lockTimeout time.Duration) error {
	want := recordOf(cfg.Backend)
	to, err := m.backendFor(want)
	if err != nil {
		return err
	}
	if c, ok := to.(interface{ Check(context.Context) error }); ok {
		if err := c.Check(m.Ctx); err != nil {
			return err
		}
	}
	prev, err := m.readBackendRecord()
	if err != nil {
		return err
	}
	from := backendRecord{Type: "local"}
	if prev != nil {
		from = *prev
	}
	switch {
	case from == want:
		if migrate {
			fmt.Fprintf(m.Stdout, "- state: already in %s; nothing to migrate\n", want)
		}
	case reconfigure:
		fmt.Fprintf(m.Stdout, "- state: using %s as it is; the state in %s was left there\n", want, from)
	default:
		src, err := m.backendFor(from)
		if err != nil {
			return fmt.Errorf("previous backend: %w", err)
		}
		st, err := src.Read(m.Ctx)
		if err != nil {
			return fmt.Errorf("read the state from %s: %w", from, err)
		}
		switch {
		case st == nil:
			// Nothing to move.
		case !migrate:
			return fmt.Errorf("backend configuration changed from %s to %s, and the old one holds a state (%d resources): run skyward init -migrate-state to move it, or skyward init -reconfigure to leave it behind", from, want, len(st.Resources))
		default:
			if err := m.migrateState(src, to, from, want, lockTimeout); err != nil {
				return err
			}
		}
	}
	m.be, m.beErr = to, nil
	if err := m.writeBackendRecord(want); err != nil {
		return err
	}
	if want.Type != "local" {
		fmt.Fprintf(m.Stdout, "- state: %s\n", to)
	}
	return nil
}

// migrateState copies the state and keys from src to dst under both
// locks, checks the copy, then retires the source: a local state moves to
// state.json.backup and its keys are removed (they now live encrypted in
// the bucket); a remote state is left in place.
func (m *Meta) migrateState(src, dst state.Backend, from, to backendRecord, lockTimeout time.Duration) error {
	l1, err := m.lockBackend(src, lockTimeout)
	if err != nil {
		return err
	}
	defer l1.Unlock()
	l2, err := m.lockBackend(dst, lockTimeout)
	if err != nil {
		return err
	}
	defer l2.Unlock()

	st, err := src.Read(m.Ctx)
	if err != nil || st == nil {
		return err
	}
	cur, err := dst.Read(m.Ctx)
	if err != nil {
		return fmt.Errorf("read the state in %s: %w", to, err)
	}
	out := st.DeepCopy()
	if cur != nil {
		if cur.Lineage != st.Lineage {
			return fmt.Errorf("%s already holds another state (lineage %s, %d resources); nothing was moved: remove it first, or point key elsewhere", dst, cur.Lineage, len(cur.Resources))
		}
		out.Serial = max(out.Serial, cur.Serial)
	}
	names, err := src.Keys().List()
	if err != nil {
		return err
	}
	for _, n := range names {
		data, err := src.Keys().Read(n)
		if err != nil {
			return err
		}
		if err := dst.Keys().Write(n, data); err != nil {
			return err
		}
	}
	if err := dst.Write(out); err != nil {
		return err
	}
	// Check the copy before the source is retired.
	back, err := dst.Read(m.Ctx)
	if err != nil {
		return err
	}
	if back == nil || back.Lineage != st.Lineage || len(back.Resources) != len(st.Resources) {
		return fmt.Errorf("the state read back from %s is not the one written; the source %s was left as it was", dst, src)
	}
	for _, n := range names {
		a, _ := src.Keys().Read(n)
		b, err := dst.Keys().Read(n)
		if err != nil || string(a) != string(b) {
			return fmt.Errorf("key %s read back from %s differs; the source %s was left as it was", n, dst, src)
		}
	}
	fmt.Fprintf(m.Stdout, "- state: moved %d resources and %d keys from %s to %s\n", len(st.Resources), len(names), from, to)
	if local, ok := src.(*state.Local); ok {
		if err := os.Rename(local.File.Path(), local.File.BackupPath()); err != nil {
			return fmt.Errorf("retire the local state: %w", err)
		}
		if err := os.RemoveAll(local.File.Keys().Dir); err != nil {
			return fmt.Errorf("remove the local keys: %w", err)
		}
		fmt.Fprintf(m.Stdout, "  The local state is kept as %s; the local keys were removed.\n", filepath.Join(dataDir, "state.json.backup"))
	} else {
		fmt.Fprintf(m.Stdout, "  The state in %s was left as it was; remove it when no pipeline uses it.\n", src)
	}
	return nil
}

func (m *Meta) lockBackend(be state.Backend, timeout time.Duration) (state.Unlocker, error) {
	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	if h, err := os.Hostname(); err == nil {
		who += "@" + h
	}
	return be.Lock(m.Ctx, state.LockInfo{PID: os.Getpid(), Command: "skyward init -migrate-state", Who: who,
		Created: time.Now().UTC(), Operation: "migrate", Version: Version}, timeout)
}

// remoteLocker is what force-unlock needs of a backend: only those whose
// lock can outlive its holder have it.
type remoteLocker interface {
	Holder(ctx context.Context) (*state.LockInfo, error)
	ForceUnlock(ctx context.Context, id string) error
}

func runForceUnlock(m *Meta, args []string) error {
	fs := newFlagSet("force-unlock")
	force := fs.Bool("force", false, "")
	pos, _, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("force-unlock takes one argument, the lock ID that the locked command printed")
	}
	be, err := m.backend()
	if err != nil {
		return err
	}
	rl, ok := be.(remoteLocker)
	if !ok {
		return fmt.Errorf("the local backend's lock is an OS file lock that the kernel releases when its holder exits: there is nothing to force-unlock")
	}
	if !*force {
		if !isTerminal(m.Stdin) {
			return fmt.Errorf("force-unlock needs confirmation, but standard input is not a terminal; run it with -force to unlock without asking")
		}
		if h, err := rl.Holder(m.Ctx); err == nil && h != nil {
			fmt.Fprintf(m.Stdout, "The lock %s is held by %s (%q, since %s).\n", h.ID, h.Who, h.Command, h.Created.UTC().Format(time.RFC3339))
		}
		fmt.Fprint(m.Stdout, "Do you really want to force-unlock?\n  Skyward will remove the lock on the remote state.\n  This will allow local Skyward commands to modify this state, even though it\n  may still be in use. Only 'yes' will be accepted to confirm.\n\n  Enter a value: ")
		line, _ := bufio.NewReader(m.Stdin).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			fmt.Fprintln(m.Stdout, "\nforce-unlock cancelled.")
			return errSilent
		}
	}
	if err := rl.ForceUnlock(m.Ctx, pos[0]); err != nil {
		return err
	}
	fmt.Fprintln(m.Stdout, "Skyward state has been successfully unlocked!\n\nThe state has been unlocked, and Skyward commands should now be able to\nobtain a new lock on the remote state.")
	return nil
}
