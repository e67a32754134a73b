package main

// End-to-end tests of issue 3 (prove every part): references beside the
// parts and at the source, structural checks with no reference, verify,
// repair from the source, manifests — the haul binary against real MinIO
// and the fault-injecting HTTP server on 127.0.0.1.

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/internal/gen"
	"github.com/haul-dev/haul/internal/testenv"
)

// e2eVerifyReport is `haul verify --json DEST`.
type e2eVerifyReport struct {
	OK    bool `json:"ok"`
	Parts []struct {
		Name       string   `json:"name"`
		Status     string   `json:"status"`
		VerifiedBy []string `json:"verified_by"`
		Error      string   `json:"error"`
	} `json:"parts"`
}

func e2eVerify(t *testing.T, dest string, code int) (e2eVerifyReport, result) {
	t.Helper()
	r := runHaul(t, nil, "verify", "--json", dest)
	wantCode(t, r, code)
	var rep e2eVerifyReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, r.stdout)
	}
	if rep.OK != (code == 0) {
		t.Fatalf("verify --json says ok=%v with exit %d", rep.OK, code)
	}
	return rep, r
}

// e2eLabels returns each part's verified_by from verify --json.
func e2eLabels(rep e2eVerifyReport) map[string][]string {
	out := map[string][]string{}
	for _, p := range rep.Parts {
		out[p.Name] = p.VerifiedBy
	}
	return out
}

// TestIntegrityFlipsOnTheLink is issue 3 acceptance 1: bits flipped in
// transit are caught and fetched again, with SHA256SUMS beside the parts
// (the part comes again) and with a haul manifest (only the bad piece
// comes again: measured on the link).
func TestIntegrityFlipsOnTheLink(t *testing.T) {
	parts := e2eSet(8, 400_000, 350_000, 300_001, 250_000)
	flips := map[string][]int64{
		parts[0].name: {10, 200_000},
		parts[2].name: {65_536},
		parts[3].name: {249_999},
	}
	nflips := 0
	var faults []testenv.FaultOption
	for name, offs := range flips {
		faults = append(faults, testenv.FlipBits(name, 1, offs...))
		nflips += len(offs)
	}
	const piece = 64 << 10

	t.Run("SHA256SUMS", func(t *testing.T) {
		srv := e2eServe(t, parts, faults...)
		os.WriteFile(filepath.Join(srv.Root(), "SHA256SUMS"), e2eSHA256SUMS(parts), 0o644)
		dest := t.TempDir()
		r := runHaul(t, nil, append(append([]string{"fetch", "-j", "4", "--chunk-size", "64K", "--progress", "log"}, e2eURLs(srv, parts)...), dest)...)
		wantCode(t, r, 0)
		e2eIdentical(t, dest, parts)
		if got := srv.Faults().Flips; got != int64(nflips) {
			t.Fatalf("%d bits flipped, want %d", got, nflips)
		}
		for name := range flips {
			if !strings.Contains(r.stdout, "part "+name+" failed verification") {
				t.Errorf("no re-fetch of %s reported:\n%s", name, r.stdout)
			}
		}
		e2eWantDone(t, dest, parts, "sha256:SHA256SUMS")
		t.Logf("SHA256SUMS: %d bytes pulled for a %d-byte set with %d flips (each flip costs its whole part)", srv.BytesSent(), e2eTotal(parts), nflips)
	})
	t.Run("manifest", func(t *testing.T) {
		srv := e2eServe(t, parts, faults...)
		manifest := filepath.Join(srv.Root(), parts[0].name+".haul.json")
		wantCode(t, runHaul(t, nil, "manifest", "--piece-size", "64K", "-o", manifest, srv.Root()), 0)
		fi, err := os.Stat(manifest)
		if err != nil {
			t.Fatal(err)
		}
		dest := t.TempDir()
		// A chunk size other than the manifest's: pieces follow the manifest.
		r := runHaul(t, nil, append(append([]string{"fetch", "-j", "4", "--chunk-size", "256K", "--progress", "log"}, e2eURLs(srv, parts)...), dest)...)
		wantCode(t, r, 0)
		e2eIdentical(t, dest, parts)
		e2eWantDone(t, dest, parts, "manifest")
		if got := srv.Faults().Flips; got != int64(nflips) {
			t.Fatalf("%d bits flipped, want %d", got, nflips)
		}
		srv.WaitIdle(5e9)
		// The set once, each flip's piece once more, and the manifest
		// itself (found by a HEAD probe beside the first URL, then read
		// whole): it is smaller than one piece.
		total, sent := e2eTotal(parts), srv.BytesSent()
		bound := total + int64(nflips)*piece + piece
		t.Logf("manifest: %d bytes pulled for a %d-byte set with %d flips (bound %d; the manifest is %d bytes)", sent, total, nflips, bound, fi.Size())
		if fi.Size() > piece {
			t.Fatalf("the manifest (%d bytes) is bigger than a piece; the bound does not cover it", fi.Size())
		}
		if sent > bound {
			t.Fatalf("pulled %d bytes, more than set %d + %d flips × %d + one piece = %d", sent, total, nflips, piece, bound)
		}
	})
}

// TestIntegrityBitrixNoReference is issue 3 acceptance 2: a Bitrix-style
// set of gzip volumes with no reference file, bits flipped in transit: the
// gzip and Bitrix checks catch every damaged volume and it comes again.
func TestIntegrityBitrixNoReference(t *testing.T) {
	site, out := filepath.Join(t.TempDir(), "site"), t.TempDir()
	if err := gen.Tree(site, 11, 3<<20); err != nil {
		t.Fatal(err)
	}
	paths, err := gen.BitrixSet(site, out, "backup_20261120", 768<<10, "")
	if err != nil {
		t.Fatal(err)
	}
	parts := e2eReadDir(t, paths)
	if len(parts) < 3 {
		t.Fatalf("the generator made %d volumes; want at least 3", len(parts))
	}
	// Flips inside the compressed data (past the empty first member and
	// the data member's header, before the trailer) of every other volume.
	var faults []testenv.FaultOption
	var damaged []string
	for i := 0; i < len(parts); i += 2 {
		n := int64(len(parts[i].data))
		faults = append(faults, testenv.FlipBits(parts[i].name, 1, 100, n/2))
		damaged = append(damaged, parts[i].name)
	}
	srv := testenv.NewFaultServer(out, faults...)
	t.Cleanup(srv.Close)
	dest := t.TempDir()
	// One URL to the first volume: haul derives the rest from its LN field.
	r := runHaul(t, nil, "fetch", srv.URL(parts[0].name), dest, "-j", "4", "--chunk-size", "64K", "--progress", "log")
	wantCode(t, r, 0)
	e2eIdentical(t, dest, parts)
	if got := srv.Faults().Flips; got != int64(2*len(damaged)) {
		t.Fatalf("%d bits flipped, want %d", got, 2*len(damaged))
	}
	for _, name := range damaged {
		if !strings.Contains(r.stdout, "part "+name+" failed verification (gzip") {
			t.Errorf("the gzip check did not catch damaged volume %s:\n%s", name, r.stdout)
		}
	}
	rep, _ := e2eVerify(t, dest, 0)
	for name, labels := range e2eLabels(rep) {
		if !slices.Contains(labels, "gzip") || !slices.Contains(labels, "bitrix") {
			t.Errorf("volume %s verified_by %v; want gzip and bitrix", name, labels)
		}
	}
}

// TestIntegrityRepair is issue 3 acceptance 3: a byte rots on disk after
// the fetch; verify names the part (exit 3); repair pulls only that part —
// only its bad piece when a manifest gives piece hashes; verify is clean
// after.
func TestIntegrityRepair(t *testing.T) {
	parts := e2eSet(9, 500_000, 400_000, 450_000)
	const piece = 64 << 10
	for _, kind := range []string{"SHA256SUMS", "manifest"} {
		t.Run(kind, func(t *testing.T) {
			srv := e2eServe(t, parts)
			ref := filepath.Join(srv.Root(), "SHA256SUMS")
			if kind == "SHA256SUMS" {
				os.WriteFile(ref, e2eSHA256SUMS(parts), 0o644)
			} else {
				ref = filepath.Join(srv.Root(), parts[0].name+".haul.json")
				wantCode(t, runHaul(t, nil, "manifest", "--piece-size", "64K", "-o", ref, srv.Root()), 0)
			}
			refInfo, _ := os.Stat(ref)
			dest := t.TempDir()
			wantCode(t, runHaul(t, nil, append(append([]string{"fetch", "-j", "4", "--chunk-size", "64K"}, e2eURLs(srv, parts)...), dest)...), 0)
			e2eIdentical(t, dest, parts)

			bad := parts[1]
			e2eFlipOnDisk(t, filepath.Join(dest, bad.name), 300_000)
			rep, r := e2eVerify(t, dest, 3)
			if !strings.Contains(r.stderr, bad.name) {
				t.Fatalf("verify does not name %s: %s", bad.name, r.stderr)
			}
			for _, p := range rep.Parts {
				want := chunk.Verified
				if p.Name == bad.name {
					want = chunk.Broken
				}
				if p.Status != want {
					t.Fatalf("verify --json: %s is %s, want %s", p.Name, p.Status, want)
				}
			}
			if st := e2eReadStatus(t, dest); st.State != chunk.SetBroken {
				t.Fatalf("status says %s after verify found a broken part", st.State)
			}
			// The broken part lost its final name.
			e2eNoWrongFinal(t, dest, parts)

			srv.WaitIdle(5e9)
			srv.ZeroCounters()
			// -j 1: idle connections may split the one piece's span on a
			// slow machine, and what the server sent its owner before the
			// split would count against the bound.
			r = runHaul(t, nil, "repair", dest, "--chunk-size", "64K", "--progress", "log", "-j", "1")
			wantCode(t, r, 0)
			e2eIdentical(t, dest, parts)
			e2eVerify(t, dest, 0)
			srv.WaitIdle(5e9)
			for _, p := range parts {
				if p.name != bad.name && srv.FileBytesSent(p.name) != 0 {
					t.Errorf("repair pulled %d bytes of the good part %s", srv.FileBytesSent(p.name), p.name)
				}
			}
			// Allowed: the reference file, read again to prove the copy,
			// and the bad part whole, or with piece hashes one piece.
			want := int64(len(bad.data))
			if kind == "manifest" {
				want = piece
			}
			got := srv.FileBytesSent(bad.name)
			t.Logf("%s: repair pulled %d bytes of %s (%d bytes), %d in all (reference file %d bytes)", kind, got, bad.name, len(bad.data), srv.BytesSent(), refInfo.Size())
			if got > want || srv.BytesSent() > want+refInfo.Size() {
				t.Fatalf("repair pulled %d bytes of %s and %d in all; want at most %d and %d", got, bad.name, srv.BytesSent(), want, want+refInfo.Size())
			}
		})
	}
}

// TestIntegrityReferenceKinds is issue 3 acceptance 4: each reference S3
// gives, against real MinIO — multipart ETags with uneven part sizes, the
// MD5 ETag of a single PUT, additional checksums CRC32C, SHA-256 and
// full-object CRC64NVME — proves its part (positive), and catches a byte
// that differs from it (negative: the same part rotted on disk, so the
// value MinIO stored disagrees with the bytes). A composite checksum is no
// reference. Sum files beside the parts are tested the same way, and one
// that is wrong breaks its part in the fetch itself.
func TestIntegrityReferenceKinds(t *testing.T) {
	m := testenv.SharedMinIO(t)
	bucket := m.NewBucket(t)
	type kind struct {
		name  string
		size  int
		opts  []testenv.PutOption
		label string // what verified_by must hold
		not   string // what it must not hold
	}
	kinds := []kind{
		{"multipart-uneven.bin", 11<<20 + 4321, []testenv.PutOption{testenv.PutParts(6<<20, 5<<20)}, "md5:etag", ""},
		{"single-put.bin", 300_000, nil, "md5:etag", ""},
		{"crc32c.bin", 200_000, []testenv.PutOption{testenv.PutChecksum(minio.ChecksumCRC32C)}, "crc32c:s3", ""},
		{"sha256.bin", 200_001, []testenv.PutOption{testenv.PutChecksum(minio.ChecksumSHA256)}, "sha256:s3", ""},
		{"crc64nvme-full.bin", 5<<20 + 999, []testenv.PutOption{testenv.PutParts(5 << 20), testenv.PutChecksum(minio.ChecksumCRC64NVME)}, "crc64nvme:s3", ""},
		{"crc32c-composite.bin", 5<<20 + 777, []testenv.PutOption{testenv.PutParts(5 << 20), testenv.PutChecksum(minio.ChecksumCRC32C)}, "md5:etag", "crc32c:s3"},
	}
	var parts []e2ePart
	for i, k := range kinds {
		p := e2ePart{k.name, e2eBytes(uint64(500+i), k.size)}
		parts = append(parts, p)
		m.Put(t, bucket, "refs/"+k.name, p.data, k.opts...)
	}
	dest := t.TempDir()
	r := runHaul(t, m.Env(), "fetch", "s3://"+bucket+"/refs/", dest, "-j", "4", "--chunk-size", "1M", "--progress", "log")
	wantCode(t, r, 0)
	e2eIdentical(t, dest, parts)
	rep, _ := e2eVerify(t, dest, 0)
	labels := e2eLabels(rep)
	t.Logf("verified_by: %v", labels)
	for _, k := range kinds {
		if !slices.Contains(labels[k.name], k.label) || (k.not != "" && slices.Contains(labels[k.name], k.not)) {
			t.Errorf("%s: verified_by %v; want %q (and not %q)", k.name, labels[k.name], k.label, k.not)
		}
	}
	// Negative: each part rots in one byte; verify names it and the
	// reference that caught it.
	for i, k := range kinds {
		e2eFlipOnDisk(t, filepath.Join(dest, k.name), int64(k.size/2+i))
	}
	rep, r = e2eVerify(t, dest, 3)
	for _, p := range rep.Parts {
		k := kinds[slices.IndexFunc(kinds, func(k kind) bool { return k.name == p.Name })]
		if p.Status != chunk.Broken || !strings.Contains(p.Error, k.label+" mismatch") {
			t.Errorf("%s after a flip on disk: %s %q; want broken by a %s mismatch", p.Name, p.Status, p.Error, k.label)
		}
		if !strings.Contains(r.stderr, p.Name) {
			t.Errorf("verify's message does not name %s: %s", p.Name, r.stderr)
		}
	}

	t.Run("sum-files", func(t *testing.T) {
		set := e2eSet(12, 300_000, 200_000, 100_000)
		var md5s bytes.Buffer // BSD form, as `md5 -r`'s sibling `md5` writes
		for _, p := range set {
			s := md5.Sum(p.data)
			fmt.Fprintf(&md5s, "MD5 (%s) = %s\n", p.name, hex.EncodeToString(s[:]))
		}
		for _, p := range set {
			m.Put(t, bucket, "sums/"+p.name, p.data)
		}
		m.Put(t, bucket, "sums/SHA256SUMS", e2eSHA256SUMS(set))
		m.Put(t, bucket, "sums/MD5SUMS", md5s.Bytes())
		dest := t.TempDir()
		r := runHaul(t, m.Env(), "fetch", "s3://"+bucket+"/sums/", dest, "--chunk-size", "64K")
		wantCode(t, r, 0)
		e2eIdentical(t, dest, set)
		rep, _ := e2eVerify(t, dest, 0)
		for name, l := range e2eLabels(rep) {
			for _, want := range []string{"sha256:SHA256SUMS", "md5:MD5SUMS", "md5:etag"} {
				if !slices.Contains(l, want) {
					t.Errorf("%s: verified_by %v lacks %s", name, l, want)
				}
			}
		}

		// A SHA256SUMS that is wrong for one part: that part cannot be
		// proven however often it comes; the others can.
		wrong := bytes.Replace(e2eSHA256SUMS(set), []byte(hexSHA(set[1].data)), []byte(strings.Repeat("ab", 32)), 1)
		m.Put(t, bucket, "wrong/SHA256SUMS", wrong)
		for _, p := range set {
			m.Put(t, bucket, "wrong/"+p.name, p.data)
		}
		dest = t.TempDir()
		r = runHaul(t, m.Env(), "fetch", "s3://"+bucket+"/wrong/", dest, "--chunk-size", "64K", "--retries", "2")
		wantCode(t, r, 3)
		e2eOneLine(t, r)
		if !strings.Contains(r.stderr, "part "+set[1].name+" is broken") || !strings.Contains(r.stderr, "sha256:SHA256SUMS mismatch") {
			t.Fatalf("the message does not name the broken part and the reference: %s", r.stderr)
		}
		if _, err := os.Stat(filepath.Join(dest, set[1].name)); err == nil {
			t.Fatalf("%s carries its final name though it fails its reference", set[1].name)
		}
		if n := e2eNoWrongFinal(t, dest, set); n != 2 {
			t.Fatalf("%d parts complete; want the 2 whose reference is right", n)
		}
	})
}

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestIntegrityBadSumFiles is issue 3 acceptance 5: a sum file naming a
// part the source lacks makes that part missing (exit 3, status
// "missing"); a malformed sum file stops with its name and line.
func TestIntegrityBadSumFiles(t *testing.T) {
	parts := e2eSet(13, 100_000, 120_000)
	t.Run("names-a-missing-part", func(t *testing.T) {
		src, dest := t.TempDir(), t.TempDir()
		e2eWriteDir(t, src, parts)
		ghost := e2ePart{"backup.bak.2", []byte("never uploaded")}
		os.WriteFile(filepath.Join(src, "SHA256SUMS"), e2eSHA256SUMS(append(slices.Clone(parts), ghost)), 0o644)
		r := runHaul(t, nil, "fetch", src+"/", dest, "--chunk-size", "64K")
		wantCode(t, r, 3)
		e2eOneLine(t, r)
		if !strings.Contains(r.stderr, "part "+ghost.name+" is missing") {
			t.Errorf("the message does not name the missing part: %s", r.stderr)
		}
		e2eIdentical(t, dest, parts)
		st := e2eReadStatus(t, dest)
		if st.State != chunk.SetBroken {
			t.Errorf("status state %s, want %s", st.State, chunk.SetBroken)
		}
		i := slices.IndexFunc(st.Parts, func(p e2eStatusPart) bool { return p.Name == ghost.name })
		if i < 0 || st.Parts[i].Status != chunk.Missing {
			t.Fatalf("status --json does not show %s as missing: %+v", ghost.name, st.Parts)
		}
		// verify agrees.
		rep, _ := e2eVerify(t, dest, 3)
		for _, p := range rep.Parts {
			if p.Name == ghost.name && p.Status != chunk.Missing {
				t.Errorf("verify --json: %s is %s, want missing", p.Name, p.Status)
			}
		}
	})
	t.Run("malformed", func(t *testing.T) {
		srv := e2eServe(t, parts)
		sums := string(e2eSHA256SUMS(parts)) + "this line is no checksum\n"
		os.WriteFile(filepath.Join(srv.Root(), "SHA256SUMS"), []byte(sums), 0o644)
		dest := t.TempDir()
		r := runHaul(t, nil, append(append([]string{"fetch"}, e2eURLs(srv, parts)...), dest)...)
		wantCode(t, r, 1)
		e2eOneLine(t, r)
		if !strings.Contains(r.stderr, "SHA256SUMS line 3") {
			t.Fatalf("the message does not name the file and line: %s", r.stderr)
		}
		e2eNoWrongFinal(t, dest, parts)
	})
}

// e2eSplitSet archives a generated site as a tar.gz and cuts it at every
// partSize bytes into NAME.000, NAME.001, …. With member > 0 the gzip
// stream is a run of members of member tar bytes each (as pigz or bgzip
// write), so a damaged member can lie within one part; else it is one
// member over the whole set.
func e2eSplitSet(t *testing.T, seed int64, member, partSize int) []e2ePart {
	t.Helper()
	site, tmp := filepath.Join(t.TempDir(), "site"), t.TempDir()
	if err := gen.Tree(site, seed, 2<<20); err != nil {
		t.Fatal(err)
	}
	var gz []byte
	if member <= 0 {
		paths, err := gen.SplitTarGz(site, tmp, "db.tar.gz", 0, gen.FormatGzip)
		if err != nil {
			t.Fatal(err)
		}
		gz = e2eReadDir(t, paths)[0].data
	} else {
		paths, err := gen.SplitTarGz(site, tmp, "db.tar", 0, gen.FormatTar)
		if err != nil {
			t.Fatal(err)
		}
		tar := e2eReadDir(t, paths)[0].data
		var b bytes.Buffer
		for off := 0; off < len(tar); off += member {
			zw := gzip.NewWriter(&b)
			zw.Write(tar[off:min(off+member, len(tar))])
			zw.Close()
		}
		gz = b.Bytes()
	}
	var parts []e2ePart
	for i, off := 0, 0; off < len(gz); i, off = i+1, off+partSize {
		parts = append(parts, e2ePart{fmt.Sprintf("db.tar.gz.%03d", i), gz[off:min(off+partSize, len(gz))]})
	}
	if len(parts) < 3 {
		t.Fatalf("%d parts; want at least 3", len(parts))
	}
	return parts
}

// TestIntegritySplitSetDecode: a tar.gz split into .000, .001, … with no
// reference at all, one part damaged on the link. The set-level test
// decode is the only check: clean, it proves the parts ("decode"); a
// damaged part is found, fetched again, and when it stays damaged the
// fetch exits 3 naming it.
func TestIntegritySplitSetDecode(t *testing.T) {
	fetchArgs := func(srv *testenv.FaultServer, parts []e2ePart, dest string) []string {
		args := []string{"fetch", "--chunk-size", "64K", "--retries", "3", "--progress", "log"}
		return append(append(args, e2eURLs(srv, parts)...), dest)
	}
	t.Run("clean", func(t *testing.T) {
		parts := e2eSplitSet(t, 12, 0, 400_000)
		srv := e2eServe(t, parts)
		dest := t.TempDir()
		wantCode(t, runHaul(t, nil, fetchArgs(srv, parts, dest)...), 0)
		e2eIdentical(t, dest, parts)
		e2eWantDone(t, dest, parts, "decode")
	})
	t.Run("one-member-damaged-once", func(t *testing.T) {
		// One member over the whole set: its CRC covers every part. The
		// suspects come again one at a time until the decode passes.
		parts := e2eSplitSet(t, 14, 0, 400_000)
		srv := e2eServe(t, parts, testenv.FlipBits(parts[1].name, 1, int64(len(parts[1].data)/2)))
		dest := t.TempDir()
		wantCode(t, runHaul(t, nil, fetchArgs(srv, parts, dest)...), 0)
		e2eIdentical(t, dest, parts)
		e2eWantDone(t, dest, parts, "decode")
	})
	// The middle part damaged on every send.
	for _, c := range []struct {
		name   string
		member int
		// alone: the decode pins the damage to that part; else the
		// member's CRC covers every part, each is a suspect, and the
		// message says the damage is in one of them.
		alone bool
	}{
		// Members of 128 KiB of tar: the middle of a 400 kB part lies in
		// a member wholly inside it.
		{"damaged-member-in-one-part", 128 << 10, true},
		{"one-member-damaged-always", 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			parts := e2eSplitSet(t, 15, c.member, 400_000)
			bad := parts[1]
			srv := e2eServe(t, parts, testenv.FlipBits(bad.name, 1000, int64(len(bad.data)/2)))
			dest := t.TempDir()
			r := runHaul(t, nil, fetchArgs(srv, parts, dest)...)
			wantCode(t, r, 3)
			e2eOneLine(t, r)
			// Suspects broken for one reason are named together ("parts
			// a, b, c are broken (…)").
			if !strings.Contains(r.stderr, "part "+bad.name+" is broken") && !regexp.MustCompile(`parts [^(]*\b`+regexp.QuoteMeta(bad.name)+`\b[^(]* are broken`).MatchString(r.stderr) {
				t.Fatalf("the message does not name %s: %s", bad.name, r.stderr)
			}
			if !c.alone && !strings.Contains(r.stderr, "the damage is in one of them") {
				t.Fatalf("the message does not say the damage is in one of the parts: %s", r.stderr)
			}
			e2eNoWrongFinal(t, dest, parts)
			for _, p := range e2eReadStatus(t, dest).Parts {
				if c.alone && (p.Name == bad.name) != (p.Status == chunk.Broken) {
					t.Errorf("status: %s is %s; only %s is broken", p.Name, p.Status, bad.name)
				}
			}
		})
	}
}
