package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchDebounce is how long the configuration file must stay unchanged
// after a change before it is reloaded: editors and deploy tools write a
// file in several steps (truncate, write, rename, chmod).
const watchDebounce = 500 * time.Millisecond

// watchConfig sends on reload (without blocking: one pending reload is
// enough) when the file at path has changed and then been quiet for
// watchDebounce, until ctx is done. It watches the file's directory, so
// that a file replaced by rename (editors, configuration management) or a
// symlink swap (Kubernetes ConfigMaps) is seen too. viper's own
// WatchConfig is not used: it is not safe for concurrent use
// (spf13/viper#2123), and every reload must go through the same
// validate-then-apply path as SIGHUP.
func watchConfig(ctx context.Context, path string, reload chan<- struct{}, log *slog.Logger) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := w.Add(dir); err != nil {
		w.Close()
		return err
	}
	name := filepath.Base(path)
	go func() {
		defer w.Close()
		var timer <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				// Kubernetes swaps a "..data" symlink; anything else in the
				// directory is not ours.
				if b := filepath.Base(ev.Name); b != name && b != "..data" {
					continue
				}
				timer = time.After(watchDebounce)
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				log.Warn("config_watch: watching the configuration file failed", "dir", dir, "err", err)
			case <-timer:
				timer = nil
				select {
				case reload <- struct{}{}:
				default:
				}
			}
		}
	}()
	log.Info("config_watch: reloading on changes to the configuration file", "file", path, "debounce", watchDebounce.String())
	return nil
}
