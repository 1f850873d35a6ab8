package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/storage/postgres"
)

// passports is the server's passport cache and, with PostgreSQL, how it
// follows the changes other replicas make.
type passports struct {
	cache *identity.PassportCache
	// watch is nil for a store that no other process writes (SQLite):
	// every change goes through the cache.
	watch identity.WatchFunc
}

// newPassports builds the passport cache over st (TTL: OAP's 30 seconds),
// following PostgreSQL's notifications when st is a PostgreSQL store.
func newPassports(st store, clock func() time.Time) (*passports, error) {
	cache, err := identity.NewPassportCache(st, identity.DefaultPassportTTL, clock)
	if err != nil {
		return nil, err
	}
	p := &passports{cache: cache}
	if pg, ok := st.(*postgres.Store); ok {
		p.watch = pg.WatchPassports
	}
	return p, nil
}

// follow keeps the cache in step with other replicas until ctx ends.
func (p *passports) follow(ctx context.Context, log *slog.Logger) {
	if p.watch == nil {
		return
	}
	_ = p.cache.Follow(ctx, p.watch, time.Second, func(err error) {
		log.WarnContext(ctx, "passport watch failed; cached passports dropped, retrying", slog.Any("error", err))
	})
}
