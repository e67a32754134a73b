package gen

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/crypto/blowfish"
)

// BitrixEmptyMember is the empty gzip member CTar::createEmptyGzipExtra
// writes at the start of every volume, before the LN and BX fields are
// filled in: bytes 12-15 (LN) and 18-21 (BX size) are zero here.
var BitrixEmptyMember = []byte{
	0x1f, 0x8b, 0x08, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, // header, FLG=FEXTRA, OS=unix
	0x0a, 0x00, // XLEN = 10
	0x00, 0x00, 0x00, 0x00, 'B', 'X', 0x00, 0x00, 0x00, 0x00, // LN slot, "BX" + size
	0x00, 0x00, 0x00, 0xff, 0xff, // empty stored block (zlib 1.2.7 sync flush)
	0x03, 0x00, // empty final block
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // CRC32, ISIZE
}

// BitrixSignature is the signature in the plaintext header of an
// encrypted Bitrix archive.
const BitrixSignature = "Bitrix Encrypted File"

const (
	bitrixBuffer   = 51200   // CTar's write buffer: encrypted and gzipped at once
	bitrixStep     = 4 << 20 // tar bytes per gzip member (one backup step)
	bitrixMaxLimit = 1<<32 - 512
)

// BitrixCipher is the cipher of an encrypted Bitrix set.
type BitrixCipher int

const (
	// BitrixAES is AES-256-ECB, what current Bitrix versions write.
	BitrixAES BitrixCipher = iota
	// BitrixBlowfish is Blowfish-ECB, what older Bitrix versions wrote.
	BitrixBlowfish
)

func (c BitrixCipher) String() string {
	if c == BitrixBlowfish {
		return "blowfish"
	}
	return "aes"
}

// BitrixOptions says how BitrixSetOf writes a set.
type BitrixOptions struct {
	// VolumeSize is the tar bytes of each volume, rounded up to 512;
	// <= 0 means Bitrix's default of 1 GiB.
	VolumeSize int64
	// Password encrypts the set when not empty, with Cipher.
	Password string
	Cipher   BitrixCipher
	// NoGzip writes the volumes without compression, as Bitrix does with
	// compression off: no empty first member, no LN or BX fields.
	NoGzip bool
}

// BitrixSet writes a Bitrix-style multi-volume backup of srcDir into outDir
// as NAME.tar.gz, NAME.tar.gz.1, ..., each volume holding volumeSize tar
// bytes (rounded up to 512; <= 0 means Bitrix's default of 1 GiB). With a
// password the archive is encrypted as current Bitrix versions do it
// (AES-256) and named NAME.enc.gz, NAME.enc.gz.1, .... It returns the
// volume paths in order. The layout is described in the package doc.
func BitrixSet(srcDir, outDir, name string, volumeSize int64, password string) ([]string, error) {
	return BitrixSetOf(srcDir, outDir, name, BitrixOptions{VolumeSize: volumeSize, Password: password})
}

// BitrixSetOf is BitrixSet with every option: the cipher of an encrypted
// set and compression. Volumes are named NAME.tar or NAME.enc (encrypted),
// with ".gz" when compressed, then ".1", ".2", ... as Bitrix names them.
func BitrixSetOf(srcDir, outDir, name string, o BitrixOptions) ([]string, error) {
	volumeSize := o.VolumeSize
	if volumeSize <= 0 {
		volumeSize = 1 << 30
	}
	volumeSize = (volumeSize + 511) / 512 * 512
	if volumeSize > bitrixMaxLimit {
		return nil, fmt.Errorf("gen bitrix: volume size %d does not fit BX (uint32)", volumeSize)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("gen bitrix: %w", err)
	}
	base := name + ".tar"
	if o.Password != "" {
		base = name + ".enc"
	}
	if !o.NoGzip {
		base += ".gz"
	}
	w := &bitrixWriter{dir: outDir, base: base, limit: volumeSize, gzip: !o.NoGzip}
	if o.Password != "" {
		c, err := bitrixBlock(o.Cipher, BitrixKey(o.Password))
		if err != nil {
			return nil, err
		}
		w.cipher = c
	}
	if err := w.openVolume(); err != nil {
		w.abort()
		return nil, err
	}
	if w.cipher != nil {
		if err := w.writeEncryptionHeader(name); err != nil {
			w.abort()
			return nil, err
		}
	}
	root, err := filepath.Abs(srcDir)
	if err != nil {
		w.abort()
		return nil, fmt.Errorf("gen bitrix: %w", err)
	}
	if err := w.addTree(root, root, ""); err != nil {
		w.abort()
		return nil, err
	}
	if err := w.closeVolume(); err != nil {
		return nil, err
	}
	return w.paths, nil
}

// BitrixKey is the key CTar derives from a password: the 32 ASCII
// characters of its lowercase hex MD5, used as raw key bytes by both
// ciphers.
func BitrixKey(password string) []byte {
	sum := md5.Sum([]byte(password))
	return []byte(hex.EncodeToString(sum[:]))
}

func bitrixBlock(c BitrixCipher, key []byte) (cipher.Block, error) {
	var b cipher.Block
	var err error
	switch c {
	case BitrixAES:
		b, err = aes.NewCipher(key)
	case BitrixBlowfish:
		b, err = blowfish.NewCipher(key)
	default:
		err = fmt.Errorf("unknown cipher %d", int(c))
	}
	if err != nil {
		return nil, fmt.Errorf("gen bitrix: %w", err)
	}
	return b, nil
}

// encryptECB encrypts p in place block by block. p is a whole number of
// blocks: CTar pads with zeros to the block, but its writes are made of
// 512-byte tar blocks, so it never has to.
func encryptECB(c cipher.Block, p []byte) {
	bs := c.BlockSize()
	for i := 0; i+bs <= len(p); i += bs {
		c.Encrypt(p[i:i+bs], p[i:i+bs])
	}
}

type bitrixWriter struct {
	dir, base string
	limit     int64
	gzip      bool
	cipher    cipher.Block

	vol      int   // current volume number, 0 for NAME.tar.gz
	cur      int64 // tar bytes in the current volume (CTar's ArchiveSizeCurrent)
	buf      []byte
	step     int64 // tar bytes in the current gzip member
	f        *os.File
	zw       *gzip.Writer
	out      io.Writer // zw, or f without compression
	paths    []string
	hdrBlock [512]byte
}

func (w *bitrixWriter) volumeName(n int) string {
	if n == 0 {
		return w.base
	}
	return w.base + "." + strconv.Itoa(n)
}

func (w *bitrixWriter) openVolume() error {
	p := filepath.Join(w.dir, w.volumeName(w.vol))
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("gen bitrix: %w", err)
	}
	w.f = f
	w.paths = append(w.paths, p)
	w.cur = 0
	if !w.gzip {
		w.out = f
		return nil
	}
	if _, err := f.Write(BitrixEmptyMember); err != nil {
		return fmt.Errorf("gen bitrix: %w", err)
	}
	w.startMember()
	return nil
}

func (w *bitrixWriter) startMember() {
	if w.zw == nil {
		w.zw = gzip.NewWriter(w.f)
	} else {
		w.zw.Reset(w.f)
	}
	w.zw.OS = 3 // unix, as zlib writes it
	w.out = w.zw
	w.step = 0
}

// closeVolume flushes the buffer, ends the member, writes BX into this
// volume and LN into the first one, as CTar::close does.
func (w *bitrixWriter) closeVolume() error {
	if err := w.flush(); err != nil {
		return err
	}
	if !w.gzip {
		err := w.f.Close()
		w.f = nil
		if err != nil {
			return fmt.Errorf("gen bitrix: %w", err)
		}
		return nil
	}
	if err := w.zw.Close(); err != nil {
		return fmt.Errorf("gen bitrix: %w", err)
	}
	var bx [4]byte
	binary.LittleEndian.PutUint32(bx[:], uint32(w.cur))
	if _, err := w.f.WriteAt(bx[:], 18); err != nil {
		return fmt.Errorf("gen bitrix: %w", err)
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("gen bitrix: %w", err)
	}
	w.f = nil
	if w.vol > 0 {
		f, err := os.OpenFile(w.paths[0], os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("gen bitrix: %w", err)
		}
		ln := []byte{'L', 'N', 0, 0}
		binary.LittleEndian.PutUint16(ln[2:], uint16(w.vol))
		_, err = f.WriteAt(ln, 12)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("gen bitrix: %w", err)
		}
	}
	return nil
}

func (w *bitrixWriter) abort() {
	if w.f != nil {
		w.f.Close()
	}
}

func (w *bitrixWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	if w.cipher != nil {
		encryptECB(w.cipher, w.buf)
	}
	if _, err := w.out.Write(w.buf); err != nil {
		return fmt.Errorf("gen bitrix: %w", err)
	}
	w.step += int64(len(w.buf))
	w.buf = w.buf[:0]
	if w.gzip && w.step >= bitrixStep {
		// A new backup step reopens the volume in append mode: new member.
		if err := w.zw.Close(); err != nil {
			return fmt.Errorf("gen bitrix: %w", err)
		}
		w.startMember()
	}
	return nil
}

func (w *bitrixWriter) writeBlock(b []byte) error {
	if len(b) != 512 {
		return fmt.Errorf("gen bitrix: block of %d bytes", len(b))
	}
	if w.cur >= w.limit {
		if err := w.closeVolume(); err != nil {
			return err
		}
		w.vol++
		if err := w.openVolume(); err != nil {
			return err
		}
	}
	w.buf = append(w.buf, b...)
	w.cur += 512
	if len(w.buf) >= bitrixBuffer {
		return w.flush()
	}
	return nil
}

// writeEncryptionHeader writes the plaintext 512-byte block that starts an
// encrypted archive; it bypasses the (encrypting) buffer as in CTar.
func (w *bitrixWriter) writeEncryptionHeader(name string) error {
	var blk [512]byte
	rnd := md5.Sum([]byte("haul gen " + name))
	copy(blk[0:100], hex.EncodeToString(rnd[:]))
	copy(blk[100:190], BitrixSignature)
	copy(blk[190:200], "1.2")
	copy(blk[256:], blk[:256])
	encryptECB(w.cipher, blk[256:])
	if _, err := w.out.Write(blk[:]); err != nil {
		return fmt.Errorf("gen bitrix: %w", err)
	}
	w.cur = 512
	return nil
}

// addTree adds the entries under dir (rel is its archive path, "" for the
// root) depth first, each directory before its contents, names sorted.
func (w *bitrixWriter) addTree(root, dir, rel string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("gen bitrix: %w", err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	for _, n := range names {
		p := filepath.Join(dir, n)
		r := n
		if rel != "" {
			r = rel + "/" + n
		}
		lfi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("gen bitrix: %w", err)
		}
		fi, err := os.Stat(p) // CTar stats, following links
		if err != nil {
			continue // broken link: CTar skips it
		}
		if fi.IsDir() {
			if lfi.Mode()&fs.ModeSymlink != 0 {
				real, err := filepath.EvalSymlinks(p)
				if err == nil && (real == root || strings.HasPrefix(real, root+string(filepath.Separator))) {
					continue // a link to a directory inside the site
				}
			}
			if err := w.addEntry(r+"/", fi, ""); err != nil {
				return err
			}
			if err := w.addTree(root, p, r); err != nil {
				return err
			}
			continue
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		if err := w.addEntry(r, fi, p); err != nil {
			return err
		}
	}
	return nil
}

// addEntry writes the header(s) of one entry and, for a file, its content.
func (w *bitrixWriter) addEntry(rel string, fi fs.FileInfo, file string) error {
	if len(rel) > 512 {
		return fmt.Errorf("gen bitrix: path is too long: %s", rel)
	}
	typ := byte('0')
	size := fi.Size()
	if fi.IsDir() {
		typ, size = '5', 0
	}
	uid, gid := owner(fi)
	mode := int64(fi.Mode().Perm())
	mtime := fi.ModTime().Unix()
	name := rel
	if len(rel) > 100 {
		if err := w.writeHeader("././@LongLink", mode, uid, gid, int64(len(rel)), mtime, 'L'); err != nil {
			return err
		}
		var blk [512]byte
		copy(blk[:], rel)
		if err := w.writeBlock(blk[:]); err != nil {
			return err
		}
		name = rel[:100]
	}
	if err := w.writeHeader(name, mode, uid, gid, size, mtime, typ); err != nil {
		return err
	}
	if typ != '0' || size == 0 {
		return nil
	}
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("gen bitrix: %w", err)
	}
	defer f.Close()
	var blk [512]byte
	for left := size; left > 0; left -= 512 {
		clear(blk[:])
		n := min(left, 512)
		if _, err := io.ReadFull(f, blk[:n]); err != nil {
			return fmt.Errorf("gen bitrix: %s: %w", file, err)
		}
		if err := w.writeBlock(blk[:]); err != nil {
			return err
		}
	}
	return nil
}

// writeHeader packs an old-style header as CTar::writeHeader does:
// pack("a100a8a8a8a12a12", name, decoct(mode), ...), type, empty
// link/magic/version/uname/gname/devmajor/devminor/prefix, and the
// checksum as decoct(sum) NUL-padded to 8.
func (w *bitrixWriter) writeHeader(name string, mode, uid, gid, size, mtime int64, typ byte) error {
	h := &w.hdrBlock
	clear(h[:])
	copy(h[0:100], name)
	copy(h[100:108], strconv.FormatInt(mode, 8))
	copy(h[108:116], strconv.FormatInt(uid, 8))
	copy(h[116:124], strconv.FormatInt(gid, 8))
	copy(h[124:136], strconv.FormatInt(size, 8))
	copy(h[136:148], strconv.FormatInt(mtime, 8))
	h[156] = typ
	sum := int64(8 * ' ')
	for i, b := range h {
		if i < 148 || i >= 156 {
			sum += int64(b)
		}
	}
	copy(h[148:156], strconv.FormatInt(sum, 8))
	return w.writeBlock(h[:])
}

var errUnknownFormat = errors.New("unknown format")
