package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"

	"github.com/pkg/sftp"
)

// Upload writes what r yields to remotePath on the node over SFTP, with
// permission bits mode. Missing parent directories are created. The data
// goes to a temporary file beside remotePath that is renamed over it at the
// end, so readers see the old file or the complete new one, never a part.
// remotePath is a slash-separated path; relative ones start in the login
// user's home directory. When ctx is done the transfer is aborted and the
// temporary file removed when possible.
func (c *Client) Upload(ctx context.Context, r io.Reader, remotePath string, mode os.FileMode) (err error) {
	fail := func(op string, err error) error {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", context.Cause(ctx), err)
		}
		return fmt.Errorf("%s: upload %s: %s: %w", c.ep.name(), remotePath, op, err)
	}
	if err := ctx.Err(); err != nil {
		return fail("start", err)
	}
	// Concurrent writes overlap the round trips of a large file (the
	// agent binary); the temporary file and the rename keep a cut upload
	// from being seen.
	sc, err := sftp.NewClient(c.conn, sftp.UseConcurrentWrites(true))
	if err != nil {
		return fail("start sftp", err)
	}
	defer sc.Close()
	stop := context.AfterFunc(ctx, func() { sc.Close() })
	defer stop()

	dir := path.Dir(remotePath)
	if err := sc.MkdirAll(dir); err != nil {
		return fail("create directory "+dir, err)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := path.Join(dir, "."+path.Base(remotePath)+".tmp-"+hex.EncodeToString(rnd[:]))
	f, err := sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return fail("create "+tmp, err)
	}
	defer func() {
		if err != nil {
			_ = sc.Remove(tmp)
		}
	}()
	// Set before writing: an explicit chmod is not subject to the umask.
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fail("chmod", err)
	}
	if _, err := f.ReadFrom(r); err != nil {
		f.Close()
		return fail("write", err)
	}
	if err := f.Close(); err != nil {
		return fail("close", err)
	}
	if err := sc.PosixRename(tmp, remotePath); err != nil {
		return fail("rename", err)
	}
	return nil
}
