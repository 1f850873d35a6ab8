// Package filestore is a small [ledger.Store] over plain files, written as
// an example for storage adapter authors: everything a store must do, and
// nothing else. It implements the four Store methods and not the optional
// [ledger.Querier]; [ledger.NewQuerier] can still answer queries over it by
// scanning.
//
// # Files
//
// A store is a directory holding three files:
//
//	leaves.log  one record per leaf, in index order:
//	            4-byte big-endian length n | n leaf bytes | 4-byte CRC-32C
//	            (Castagnoli) of the length and leaf bytes
//	hashes.log  the stored Merkle hashes, 32 bytes each, hash i at offset 32*i
//	commit      what is committed, written last:
//	            8-byte magic "OARSFS01" | 8-byte big-endian leaf count |
//	            8-byte big-endian length of leaves.log | 4-byte CRC-32C
//	            of the 24 bytes before it
//
// Only the prefixes of leaves.log and hashes.log that commit describes are
// part of the log. Bytes past them are left over from an Append that did
// not finish, and [Open] cuts them off.
//
// # Durability and crashes
//
// [Store.Append] writes the new records past the committed end of both data
// files, fsyncs both files, then writes the new commit to commit.tmp,
// fsyncs it, renames it over commit and fsyncs the directory; only then does
// it return. A rename is atomic: after a crash at any point, commit holds
// either the old or the new state, never a mix, and whichever it holds
// points only at data that was fsynced before it was written. So an
// acknowledged Append is always on disk, and an unacknowledged one is
// either wholly there or wholly cut off by the next Open, which also
// detects a torn or damaged commit (CRC), committed data that is missing
// (files shorter than commit says) and damaged leaf records (CRC) and then
// refuses to open rather than serve a shortened or altered log. Damaged
// hashes are caught by [ledger.Verify], which recomputes them from the
// leaves.
//
// The argument needs fsync and rename to mean what POSIX says; it holds on
// Linux file systems. (On macOS, fsync does not flush the drive's cache;
// a production store there would use F_FULLFSYNC.)
//
// # Concurrency
//
// A Store is safe for concurrent use by multiple goroutines: appends are
// serialised by a mutex, and reads run alongside an append because they
// only touch the committed prefix of the files. It is not safe for several
// processes: open a directory from one process at a time.
package filestore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/oarsdev/oars/ledger"
	"golang.org/x/mod/sumdb/tlog"
)

// File names inside a store directory.
const (
	leavesFile = "leaves.log"
	hashesFile = "hashes.log"
	commitFile = "commit"
	commitTemp = "commit.tmp"
)

const (
	commitMagic = "OARSFS01"
	commitLen   = len(commitMagic) + 8 + 8 + 4
	// MaxLeafSize is the largest leaf Append accepts.
	MaxLeafSize = 64 << 20
	recordExtra = 8 // length prefix and CRC around each leaf
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is wrapped by the errors of [Open] and the reads when the files
// do not hold a consistent log: a damaged commit or leaf record, or
// committed data that is missing.
var ErrCorrupt = errors.New("filestore: corrupt store")

// ErrClosed is wrapped by the errors of every method called after
// [Store.Close].
var ErrClosed = errors.New("filestore: store is closed")

// Store is a [ledger.Store] in a directory of append-only files. See the
// package documentation for the format and the crash argument.
type Store struct {
	dir    string
	leaves *os.File
	hashes *os.File

	// appendMu serialises Append and Close. It is held while writing, so
	// that mu (which reads need) is held only to publish a new state.
	appendMu sync.Mutex
	broken   error // an earlier Append failed midway; guarded by appendMu

	mu      sync.RWMutex
	closed  bool
	size    int64   // committed leaves
	offsets []int64 // offsets[i] is where record i starts; offsets[size] is the committed length
}

var _ ledger.Store = (*Store)(nil)

// Open opens the store in dir, creating dir and an empty store if dir does
// not exist or is empty. It cuts off data past the last commit (left by an
// Append that did not finish) and checks every committed leaf record. It
// returns an error wrapping [ErrCorrupt] if the files do not hold a
// consistent log, and another error if ctx is done or a file operation
// fails. The caller must Close the store.
func Open(ctx context.Context, dir string) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("filestore: open: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("filestore: open: %w", err)
	}
	size, leavesLen, err := readCommit(dir)
	if errors.Is(err, os.ErrNotExist) {
		// A new store, or one whose creation was interrupted before its
		// first commit. Data files without a commit mean the commit was
		// lost: refuse rather than start an empty log over them.
		for _, name := range []string{leavesFile, hashesFile} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.Size() > 0 {
				return nil, fmt.Errorf("filestore: open: %s has data but there is no commit file: %w", name, ErrCorrupt)
			}
		}
		if err := writeCommit(dir, 0, 0); err != nil {
			return nil, fmt.Errorf("filestore: open: %w", err)
		}
		size, leavesLen, err = 0, 0, nil
	}
	if err != nil {
		return nil, fmt.Errorf("filestore: open: %w", err)
	}

	s := &Store{dir: dir, size: size}
	if s.leaves, err = os.OpenFile(filepath.Join(dir, leavesFile), os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("filestore: open: %w", err)
	}
	if s.hashes, err = os.OpenFile(filepath.Join(dir, hashesFile), os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		s.leaves.Close()
		return nil, fmt.Errorf("filestore: open: %w", err)
	}
	if err := s.recover(ctx, leavesLen); err != nil {
		s.leaves.Close()
		s.hashes.Close()
		return nil, fmt.Errorf("filestore: open: %w", err)
	}
	return s, nil
}

// recover cuts both data files to their committed length and indexes the
// committed leaf records.
func (s *Store) recover(ctx context.Context, leavesLen int64) error {
	hashesLen := tlog.StoredHashCount(s.size) * tlog.HashSize
	for _, f := range []struct {
		file *os.File
		want int64
	}{{s.leaves, leavesLen}, {s.hashes, hashesLen}} {
		fi, err := f.file.Stat()
		if err != nil {
			return err
		}
		switch {
		case fi.Size() < f.want:
			return fmt.Errorf("%s is %d bytes, the commit says %d: %w", filepath.Base(f.file.Name()), fi.Size(), f.want, ErrCorrupt)
		case fi.Size() > f.want:
			// An Append that was never acknowledged: drop it.
			if err := f.file.Truncate(f.want); err != nil {
				return err
			}
			if err := f.file.Sync(); err != nil {
				return err
			}
		}
	}

	s.offsets = make([]int64, 0, s.size+1)
	r := bufio.NewReaderSize(io.NewSectionReader(s.leaves, 0, leavesLen), 1<<16)
	off := int64(0)
	var rec []byte
	for i := int64(0); i < s.size; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		s.offsets = append(s.offsets, off)
		var head [4]byte
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return fmt.Errorf("leaf %d: %w", i, ErrCorrupt)
		}
		n := int64(binary.BigEndian.Uint32(head[:]))
		if n > MaxLeafSize || off+n+recordExtra > leavesLen {
			return fmt.Errorf("leaf %d: bad length: %w", i, ErrCorrupt)
		}
		rec = append(rec[:0], head[:]...)
		rec = append(rec, make([]byte, n+4)...)
		if _, err := io.ReadFull(r, rec[4:]); err != nil {
			return fmt.Errorf("leaf %d: %w", i, ErrCorrupt)
		}
		if _, err := parseRecord(rec); err != nil {
			return fmt.Errorf("leaf %d: %w", i, err)
		}
		off += n + recordExtra
	}
	if off != leavesLen {
		return fmt.Errorf("%s has %d bytes of records, the commit says %d: %w", leavesFile, off, leavesLen, ErrCorrupt)
	}
	s.offsets = append(s.offsets, off)
	return nil
}

// Dir returns the directory of the store.
func (s *Store) Dir() string { return s.dir }

// Close closes the store's files. Every method called afterwards returns an
// error wrapping [ErrClosed]; calling Close again returns nil.
func (s *Store) Close() error {
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := errors.Join(s.leaves.Close(), s.hashes.Close()); err != nil {
		return fmt.Errorf("filestore: close: %w", err)
	}
	return nil
}

// Size returns the number of committed leaves.
func (s *Store) Size(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("filestore: size: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, fmt.Errorf("filestore: size: %w", ErrClosed)
	}
	return s.size, nil
}

// Append durably stores leaves at [start, start+len(leaves)) with their
// stored hashes, as [ledger.Store] requires, and returns once they are on
// disk (see the package documentation). It returns an error wrapping
// [ledger.ErrConflict] if start is not the current size, and another error
// if ctx is done when it is called, the hash count is wrong, a leaf is
// larger than [MaxLeafSize], or a write fails; in all these cases nothing
// new is committed. Once writing has begun ctx is no longer consulted.
//
// A failed write leaves the files in a state only Open knows how to
// clean up, so after one every later Append fails too, until the store is
// closed and opened again.
func (s *Store) Append(ctx context.Context, start int64, leaves [][]byte, hashes []tlog.Hash) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("filestore: append: %w", err)
	}
	s.appendMu.Lock()
	defer s.appendMu.Unlock()

	// Only Append changes size and offsets, and it holds appendMu, so they
	// can be read here without mu.
	s.mu.RLock()
	closed, size, leavesLen := s.closed, s.size, s.offsets[len(s.offsets)-1]
	s.mu.RUnlock()
	switch {
	case closed:
		return fmt.Errorf("filestore: append: %w", ErrClosed)
	case s.broken != nil:
		return fmt.Errorf("filestore: append: an earlier append failed, reopen the store: %w", s.broken)
	case start != size:
		return fmt.Errorf("filestore: append at %d, size is %d: %w", start, size, ledger.ErrConflict)
	}
	end := start + int64(len(leaves))
	if want := tlog.StoredHashCount(end) - tlog.StoredHashIndex(0, start); int64(len(hashes)) != want {
		return fmt.Errorf("filestore: append: got %d hashes for %d leaves, want %d", len(hashes), len(leaves), want)
	}

	// Encode everything first: nothing is written unless all of it is valid.
	var buf bytes.Buffer
	offsets := make([]int64, 0, len(leaves))
	for i, leaf := range leaves {
		if len(leaf) > MaxLeafSize {
			return fmt.Errorf("filestore: append: leaf %d is %d bytes, the limit is %d", start+int64(i), len(leaf), MaxLeafSize)
		}
		offsets = append(offsets, leavesLen+int64(buf.Len()))
		buf.Write(encodeRecord(leaf))
	}
	hbuf := make([]byte, 0, len(hashes)*tlog.HashSize)
	for _, h := range hashes {
		hbuf = append(hbuf, h[:]...)
	}
	newLen := leavesLen + int64(buf.Len())

	// 1. Data past the committed end, 2. fsync, 3. commit, 4. publish.
	err := func() error {
		if _, err := s.leaves.WriteAt(buf.Bytes(), leavesLen); err != nil {
			return err
		}
		if _, err := s.hashes.WriteAt(hbuf, tlog.StoredHashIndex(0, start)*tlog.HashSize); err != nil {
			return err
		}
		if err := s.leaves.Sync(); err != nil {
			return err
		}
		if err := s.hashes.Sync(); err != nil {
			return err
		}
		return writeCommit(s.dir, end, newLen)
	}()
	if err != nil {
		s.broken = err
		return fmt.Errorf("filestore: append: %w", err)
	}

	s.mu.Lock()
	s.size = end
	s.offsets = append(s.offsets[:len(s.offsets)-1], offsets...)
	s.offsets = append(s.offsets, newLen)
	s.mu.Unlock()
	return nil
}

// ReadLeaves returns n leaves starting at index start, checking each
// record's CRC. It returns an error wrapping [ledger.ErrOutOfRange] if any
// of them is not committed, one wrapping [ErrCorrupt] if a record is
// damaged, and another error if ctx is done or a read fails.
func (s *Store) ReadLeaves(ctx context.Context, start int64, n int) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("filestore: read leaves: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, fmt.Errorf("filestore: read leaves: %w", ErrClosed)
	}
	if start < 0 || n < 0 || start > s.size || int64(n) > s.size-start {
		return nil, fmt.Errorf("filestore: read leaves [%d, +%d) of %d: %w", start, n, s.size, ledger.ErrOutOfRange)
	}
	lo, hi := s.offsets[start], s.offsets[start+int64(n)]
	buf := make([]byte, hi-lo)
	if _, err := s.leaves.ReadAt(buf, lo); err != nil {
		return nil, fmt.Errorf("filestore: read leaves: %w", err)
	}
	out := make([][]byte, n)
	for i := range out {
		recLen := s.offsets[start+int64(i)+1] - s.offsets[start+int64(i)]
		leaf, err := parseRecord(buf[:recLen:recLen])
		if err != nil {
			return nil, fmt.Errorf("filestore: read leaves: leaf %d: %w", start+int64(i), err)
		}
		out[i] = leaf
		buf = buf[recLen:]
	}
	return out, nil
}

// ReadHashes returns the stored hashes at the given storage indexes, in the
// same order. It returns an error wrapping [ledger.ErrOutOfRange] if any of
// them is not committed, and another error if ctx is done or a read fails.
func (s *Store) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("filestore: read hashes: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, fmt.Errorf("filestore: read hashes: %w", ErrClosed)
	}
	count := tlog.StoredHashCount(s.size)
	for _, x := range indexes {
		if x < 0 || x >= count {
			return nil, fmt.Errorf("filestore: read hash %d of %d: %w", x, count, ledger.ErrOutOfRange)
		}
	}
	out := make([]tlog.Hash, len(indexes))
	// Read runs of consecutive indexes with one call each.
	for i := 0; i < len(indexes); {
		j := i + 1
		for j < len(indexes) && indexes[j] == indexes[j-1]+1 {
			j++
		}
		buf := make([]byte, (j-i)*tlog.HashSize)
		if _, err := s.hashes.ReadAt(buf, indexes[i]*tlog.HashSize); err != nil {
			return nil, fmt.Errorf("filestore: read hashes: %w", err)
		}
		for k := i; k < j; k++ {
			copy(out[k][:], buf[(k-i)*tlog.HashSize:])
		}
		i = j
	}
	return out, nil
}

// encodeRecord returns the leaves.log record of leaf.
func encodeRecord(leaf []byte) []byte {
	rec := make([]byte, 4, len(leaf)+recordExtra)
	binary.BigEndian.PutUint32(rec, uint32(len(leaf)))
	rec = append(rec, leaf...)
	return binary.BigEndian.AppendUint32(rec, crc32.Checksum(rec, castagnoli))
}

// parseRecord returns the leaf in rec, which must be exactly one record.
func parseRecord(rec []byte) ([]byte, error) {
	if len(rec) < recordExtra || int(binary.BigEndian.Uint32(rec)) != len(rec)-recordExtra {
		return nil, fmt.Errorf("bad record length: %w", ErrCorrupt)
	}
	body := rec[:len(rec)-4]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(rec[len(rec)-4:]) {
		return nil, fmt.Errorf("record checksum mismatch: %w", ErrCorrupt)
	}
	return body[4:], nil
}

// readCommit reads the commit file of dir. It returns an error wrapping
// os.ErrNotExist if there is none.
func readCommit(dir string) (size, leavesLen int64, err error) {
	b, err := os.ReadFile(filepath.Join(dir, commitFile))
	if err != nil {
		return 0, 0, err
	}
	if len(b) != commitLen || string(b[:len(commitMagic)]) != commitMagic {
		return 0, 0, fmt.Errorf("commit file: unknown format: %w", ErrCorrupt)
	}
	body, sum := b[:commitLen-4], binary.BigEndian.Uint32(b[commitLen-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return 0, 0, fmt.Errorf("commit file: checksum mismatch: %w", ErrCorrupt)
	}
	size = int64(binary.BigEndian.Uint64(body[len(commitMagic):]))
	leavesLen = int64(binary.BigEndian.Uint64(body[len(commitMagic)+8:]))
	if size < 0 || leavesLen < 0 || size > leavesLen/recordExtra {
		return 0, 0, fmt.Errorf("commit file: impossible sizes: %w", ErrCorrupt)
	}
	return size, leavesLen, nil
}

// writeCommit atomically replaces the commit file of dir and makes the
// replacement durable: write a temporary file, fsync it, rename it over the
// commit file, fsync the directory.
func writeCommit(dir string, size, leavesLen int64) error {
	b := make([]byte, 0, commitLen)
	b = append(b, commitMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(size))
	b = binary.BigEndian.AppendUint64(b, uint64(leavesLen))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))

	tmp := filepath.Join(dir, commitTemp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, commitFile)); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}
