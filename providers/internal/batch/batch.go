// Package batch waits for many cloud objects with one poll for all of
// them, so that a pool of N nodes costs one API call a poll, not N.
package batch

import (
	"context"
	"sync"
	"time"
)

// Result is what a poll saw of one object.
type Result[T any] struct {
	Value T
	Found bool // the poll listed the object
	Err   error
}

// Waiter polls, while anyone waits, for every object waited for at once.
// Poll and Settled must be set before the first Add; First and Max are
// the first poll's delay and the bound of its doubling.
type Waiter[T any] struct {
	// Poll reads the objects of the given ids; ids it does not return are
	// not found.
	Poll func(ids []string) (map[string]T, error)
	// Settled says whether a waiter gets this poll's view of its object
	// (v, found), waited being how long ago it started waiting. A failed
	// poll always settles.
	Settled    func(v T, found bool, waited time.Duration) bool
	First, Max time.Duration

	mu      sync.Mutex
	waiting map[string]*entry[T]
	running bool
}

type entry[T any] struct {
	chans []chan Result[T]
	since time.Time
}

// Add registers a waiter for the first poll that settles id, counting its
// wait from since (the zero time: from long ago).
func (w *Waiter[T]) Add(id string, since time.Time) chan Result[T] {
	ch := make(chan Result[T], 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.waiting == nil {
		w.waiting = map[string]*entry[T]{}
	}
	e := w.waiting[id]
	if e == nil {
		e = &entry[T]{since: since}
		w.waiting[id] = e
	} else if since.Before(e.since) {
		e.since = since
	}
	e.chans = append(e.chans, ch)
	if !w.running {
		w.running = true
		go w.loop()
	}
	return ch
}

// Remove unregisters ch, a waiter for id that gave up.
func (w *Waiter[T]) Remove(id string, ch chan Result[T]) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.waiting[id]
	if e == nil {
		return
	}
	for i, c := range e.chans {
		if c == ch {
			e.chans = append(e.chans[:i], e.chans[i+1:]...)
			break
		}
	}
	if len(e.chans) == 0 {
		delete(w.waiting, id)
	}
}

// Next waits for the next poll that settles id, counting its wait from
// since (see Add), or until ctx is done.
func (w *Waiter[T]) Next(ctx context.Context, id string, since time.Time) (Result[T], error) {
	ch := w.Add(id, since)
	select {
	case <-ctx.Done():
		w.Remove(id, ch)
		return Result[T]{}, ctx.Err()
	case r := <-ch:
		return r, nil
	}
}

// loop polls while anyone waits, backing off from First to Max.
func (w *Waiter[T]) loop() {
	delay := w.First
	for {
		time.Sleep(delay)
		w.mu.Lock()
		ids := make([]string, 0, len(w.waiting))
		for id := range w.waiting {
			ids = append(ids, id)
		}
		if len(ids) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		found, err := w.Poll(ids)
		now := time.Now()
		w.mu.Lock()
		for _, id := range ids {
			e := w.waiting[id]
			if e == nil {
				continue
			}
			v, ok := found[id]
			if err == nil && !w.Settled(v, ok, now.Sub(e.since)) {
				continue
			}
			for _, ch := range e.chans {
				ch <- Result[T]{Value: v, Found: ok, Err: err}
			}
			delete(w.waiting, id)
		}
		w.mu.Unlock()
		delay = min(2*delay, w.Max)
	}
}
