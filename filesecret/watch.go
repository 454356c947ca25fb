package filesecret

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/clock"
)

const (
	// reportAfter is how many reads in a row must fail before the watcher
	// reports the error: a read or two may fail while a writer is busy.
	reportAfter = 3
	// maxRetry caps the pause between the reads of a secret that stays
	// unreadable, and so how long a removed directory that comes back
	// goes unnoticed.
	maxRetry = 5 * time.Second
	// minRetry is the first pause after a failed read when the debounce is
	// shorter.
	minRetry = 10 * time.Millisecond
)

// Refresher is what [Source.WatchConnector] calls after a change;
// [*gopqr.Connector] implements it.
type Refresher interface {
	Refresh(ctx context.Context) error
}

// A Watcher watches the files of a [Source]; see [Source.Watch].
type Watcher struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// Close stops the watcher and waits until it has stopped, including a call
// of onChange under way. It is safe to call more than once.
func (w *Watcher) Close() error {
	w.cancel()
	<-w.done
	return nil
}

// Done is closed once the watcher has stopped, after its context ended or
// Close was called.
func (w *Watcher) Done() <-chan struct{} { return w.done }

// WatchConnector is Watch with an onChange that calls c.Refresh(ctx), so a
// connector picks up a new secret as soon as it is written:
//
//	conn, err := gopqr.NewConnector(dsn, gopqr.WithSource(src))
//	...
//	w, err := src.WatchConnector(ctx, conn)
//	...
//	defer w.Close()
//
// An error from c.Refresh goes to the [WithErrorHandler] function, unless
// ctx has ended.
func (s *Source) WatchConnector(ctx context.Context, c Refresher) (*Watcher, error) {
	if c == nil {
		return nil, errors.New("filesecret: WatchConnector: nil connector")
	}
	// The refresh gets the watcher's own context, which Close cancels, so
	// Close does not wait for a refresh that waits for the store.
	return s.watch(ctx, func(wctx context.Context) {
		if err := c.Refresh(wctx); err != nil && wctx.Err() == nil {
			s.report(fmt.Errorf("filesecret: refresh after a change: %w", err))
		}
	})
}

// Watch watches the secret with fsnotify and calls onChange, on the
// watcher's own goroutine, after the logins it holds have changed. It
// returns once the watch is set up; the watcher runs until ctx ends or
// [Watcher.Close] is called.
//
// It watches the directory, not the file: the directory of the secret when
// it is a directory, the directory holding it when it is a file. So it
// sees a Kubernetes update (a new timestamped directory, then a rename of
// ..data_tmp over ..data), an editor's or agent's rename over the file, and
// a rewrite in place. After a burst of changes has been quiet for the
// debounce ([WithDebounce]) it reads the secret once and calls onChange if
// the logins differ from those it read last; a change that leaves them as
// they were calls nothing. A read that fails, because a writer is half-way
// through or the directory was removed, calls nothing and is retried, with
// a pause that doubles up to 5 s, until it succeeds; it is reported to the
// [WithErrorHandler] function from the third failure in a row. A removed
// directory is watched again when it comes back.
//
// onChange must not block for long: changes that happen meanwhile are
// handled after it returns. Typically it calls Refresh on the connector;
// see [Source.WatchConnector].
func (s *Source) Watch(ctx context.Context, onChange func()) (*Watcher, error) {
	if onChange == nil {
		return nil, errors.New("filesecret: Watch: nil onChange")
	}
	return s.watch(ctx, func(context.Context) { onChange() })
}

// watch is Watch with an onChange that gets the watcher's context.
func (s *Source) watch(ctx context.Context, onChange func(context.Context)) (*Watcher, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("filesecret: watch: %w", err)
	}
	l := &loop{s: s, onChange: onChange, extra: map[string]bool{}}
	if fi, err := os.Stat(s.path); err == nil && fi.IsDir() {
		l.base, l.dirMode = s.path, true
	} else {
		l.base, l.name = filepath.Dir(s.path), filepath.Base(s.path)
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("filesecret: watch %s: %w", l.base, err)
	}
	if err := fw.Add(l.base); err != nil {
		_ = fw.Close()
		return nil, fmt.Errorf("filesecret: watch %s: %w", l.base, err)
	}
	l.fw = fw
	l.seen, _ = s.read() // a secret unreadable now makes the first good read a change
	l.syncWatches()
	l.timer = s.clock.NewTimer(time.Hour)
	l.timer.Stop()
	ctx, cancel := context.WithCancel(ctx)
	w := &Watcher{cancel: cancel, done: make(chan struct{})}
	go l.run(ctx, w.done)
	return w, nil
}

// report hands err to the error handler, if any.
func (s *Source) report(err error) {
	if s.onError == nil {
		return
	}
	defer func() { _ = recover() }()
	s.onError(err)
}

// loop is the state of one watcher, owned by its goroutine.
type loop struct {
	s        *Source
	fw       *fsnotify.Watcher
	onChange func(context.Context)
	base     string // the directory watched
	dirMode  bool   // the secret is base itself
	name     string // the file's name in base, when it is a file
	// extra holds the directories of symbolic link targets outside base,
	// also watched.
	extra map[string]bool
	seen  []gopqr.Pair // the logins read last

	timer    clock.Timer
	pending  bool      // a burst is under way
	first    time.Time // when it began
	failures int       // reads in a row that failed
}

func (l *loop) run(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	defer l.fw.Close()
	defer l.timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-l.fw.Events:
			if !ok {
				return
			}
			if l.relevant(ev) {
				l.arm()
			}
		case err, ok := <-l.fw.Errors:
			if !ok {
				return
			}
			l.s.report(fmt.Errorf("filesecret: watch %s: %w", l.base, err))
			l.arm() // an overflow may have hidden a change
		case <-l.timer.C():
			l.fire(ctx)
		}
	}
}

// relevant reports whether ev may have changed the secret.
func (l *loop) relevant(ev fsnotify.Event) bool {
	dir := filepath.Dir(ev.Name)
	switch {
	case ev.Name == l.base || l.extra[dir]:
		return true
	case dir != l.base:
		return false
	case l.dirMode:
		return true
	}
	b := filepath.Base(ev.Name)
	return b == l.name || strings.HasPrefix(b, "..") // ..data, ..data_tmp, ..2026_...
}

// arm (re)starts the debounce: the read happens once no change has come
// for the debounce, or ten debounces after the burst began.
func (l *loop) arm() {
	d := l.s.debounce
	now := l.s.clock.Now()
	if !l.pending {
		l.pending, l.first = true, now
	}
	wait := d
	if left := l.first.Add(10 * d).Sub(now); left < wait {
		wait = max(left, 0)
	}
	l.timer.Stop()
	l.timer.Reset(wait)
}

// fire reads the secret after a burst, or to retry a failed read.
func (l *loop) fire(ctx context.Context) {
	if l.s.afterFire != nil {
		defer l.s.afterFire()
	}
	l.pending = false
	l.syncWatches()
	pairs, err := l.s.read()
	if err != nil {
		l.failures++
		if l.failures == reportAfter {
			l.s.report(err)
		}
		l.timer.Stop()
		l.timer.Reset(l.retryDelay())
		return
	}
	l.failures = 0
	if slices.Equal(pairs, l.seen) || ctx.Err() != nil {
		return
	}
	l.seen = pairs
	l.call(ctx)
}

// retryDelay is the pause before the next read after l.failures failed.
func (l *loop) retryDelay() time.Duration {
	d := max(l.s.debounce, minRetry)
	for i := 1; i < l.failures && d < maxRetry; i++ {
		d *= 2
	}
	return min(d, maxRetry)
}

func (l *loop) call(ctx context.Context) {
	defer func() {
		if p := recover(); p != nil {
			l.s.report(fmt.Errorf("filesecret: watch: onChange panicked: %v", p))
		}
	}()
	l.onChange(ctx)
}

// syncWatches watches base again if it was removed and is back, and keeps
// a watch on the directory of each symbolic link target outside base.
func (l *loop) syncWatches() {
	if !slices.Contains(l.fw.WatchList(), l.base) {
		_ = l.fw.Add(l.base) // if it is still missing, the read fails and is retried
	}
	targets := []string{l.s.path}
	if l.dirMode {
		n := l.s.names
		targets = targets[:0]
		for _, name := range []string{n.Username, n.Password, n.PreviousUsername, n.PreviousPassword} {
			if name != "" {
				targets = append(targets, filepath.Join(l.base, name))
			}
		}
	}
	realBase, err := filepath.EvalSymlinks(l.base)
	if err != nil {
		realBase = l.base
	}
	want := map[string]bool{}
	for _, t := range targets {
		r, err := filepath.EvalSymlinks(t)
		if err != nil {
			continue
		}
		d := filepath.Dir(r)
		if !inside(d, l.base) && !inside(d, realBase) {
			want[d] = true
		}
	}
	for d := range l.extra {
		if !want[d] {
			_ = l.fw.Remove(d)
			delete(l.extra, d)
		}
	}
	for d := range want {
		if !l.extra[d] && l.fw.Add(d) == nil {
			l.extra[d] = true
		}
	}
}

// inside reports whether dir is base or below it.
func inside(dir, base string) bool {
	rel, err := filepath.Rel(base, dir)
	return err == nil && filepath.IsLocal(rel)
}
