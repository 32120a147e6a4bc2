// Package state owns skyward's record of what it has created: the state
// model (State, Resource), its on-disk form in .skyward/state.json with the
// previous version kept as state.json.backup, the format version check, the
// state lock (.skyward/state.lock, an OS-level advisory lock with a
// state.lock.info file naming the holder), and the secrets store
// (.skyward/keys/).
//
// Backend is the seam the commands use: Local is the .skyward directory
// above, S3 keeps the state, a lock object and the keys (encrypted with
// AES-256-GCM under a key derived from SKYWARD_STATE_KEY with Argon2id) in a
// bucket, with conditional writes so that a writer that did not see the
// latest state is refused.
//
// Every write is atomic: a temp file in the same directory is written,
// fsynced and renamed over the target, and the directory is fsynced, so a
// crash leaves either the old or the new content, never a mix. State files,
// backups and keys are mode 0600 and the directories 0700.
//
// The package must import no other package of this repository, and it never
// decides what goes into state: the executor is the only writer, the planner
// a reader. It holds no secrets in State; those go to Keys and never into
// plan output. Callers serialize writes by holding the Lock.
package state
