package file

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/endpoint/internal/closing"
	"github.com/hubkit/hubkit/endpoint/internal/record"
)

// DefaultFileNameFormat is IoT Hub's default file name format.
const DefaultFileNameFormat = "{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}"

var placeholders = []string{"{iothub}", "{partition}", "{YYYY}", "{MM}", "{DD}", "{HH}", "{mm}"}

// Encoding is the format of the files.
type Encoding string

// The encodings of IoT Hub's storage endpoint.
const (
	// JSON writes one JSON record per line.
	JSON Encoding = "JSON"
	// Avro writes an Avro object container file.
	Avro Encoding = "avro"
	// AvroDeflate writes an Avro object container file compressed with deflate.
	AvroDeflate Encoding = "avroDeflate"
)

// Options configure a file [Endpoint].
type Options struct {
	// Name names the endpoint in errors. Empty means "file".
	Name string
	// Dir is the directory the files go under. Required; created if missing.
	Dir string
	// HubName replaces {iothub}. Required.
	HubName string
	// FileNameFormat names each file relative to Dir. It must contain every
	// placeholder of the default once or more, in any order, with other
	// text allowed; "/" separates directories. Empty means
	// DefaultFileNameFormat.
	FileNameFormat string
	// Partition returns the {partition} of a message. Nil means the 32-bit
	// FNV-1a hash of its connection device id modulo Partitions: the hub's
	// own partitioning (hub.Hub.Partition), so that {partition} is the
	// message's partition of the built-in endpoint, as in IoT Hub, as long
	// as Partitions matches.
	Partition func(*hubkit.Message) int
	// Partitions is used by the default Partition. Zero means 4, the hub's
	// default. Warning: the endpoint cannot see the hub's configuration;
	// set this to the hub's Config.Partitions whenever that is not 4, or
	// {partition} will not be the message's hub partition.
	Partitions int
	// MaxChunkBytes is the largest file, in bytes of records. A single
	// record larger than it still gets a file of its own. Zero means 300
	// MiB, IoT Hub's default maxChunkSizeInBytes.
	MaxChunkBytes int
	// Encoding is the file format. Empty means JSON, which is easier to read
	// than IoT Hub's default, Avro.
	Encoding Encoding
	// Now gives the time that names a file. Nil means time.Now.
	Now func() time.Time
}

// Endpoint writes batches to files. It is safe for concurrent use.
type Endpoint struct {
	opts Options
	life *closing.State
}

var _ endpoint.Endpoint = (*Endpoint)(nil)

// New checks opts and returns an Endpoint; it creates Dir.
func New(opts Options) (*Endpoint, error) {
	var problems []error
	if opts.Name == "" {
		opts.Name = "file"
	}
	if opts.FileNameFormat == "" {
		opts.FileNameFormat = DefaultFileNameFormat
	}
	for _, p := range placeholders {
		if !strings.Contains(opts.FileNameFormat, p) {
			problems = append(problems, fmt.Errorf("FileNameFormat %q lacks %s", opts.FileNameFormat, p))
		}
	}
	if opts.Dir == "" {
		problems = append(problems, errors.New("Dir is empty"))
	}
	if opts.HubName == "" || strings.ContainsAny(opts.HubName, `/\`) || opts.HubName == ".." {
		problems = append(problems, fmt.Errorf("HubName %q is empty or not a file name", opts.HubName))
	}
	switch opts.Encoding {
	case "":
		opts.Encoding = JSON
	case JSON, Avro, AvroDeflate:
	default:
		problems = append(problems, fmt.Errorf("Encoding %q is not JSON, avro or avroDeflate", opts.Encoding))
	}
	if opts.Partitions < 0 || opts.MaxChunkBytes < 0 {
		problems = append(problems, errors.New("negative Partitions or MaxChunkBytes"))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("file: invalid options: %w", errors.Join(problems...))
	}
	if opts.Partitions == 0 {
		opts.Partitions = 4
	}
	if opts.Partition == nil {
		n := opts.Partitions
		opts.Partition = func(m *hubkit.Message) int {
			h := fnv.New32a()
			h.Write([]byte(m.System.ConnectionDeviceID))
			return int(h.Sum32() % uint32(n))
		}
	}
	if opts.MaxChunkBytes == 0 {
		opts.MaxChunkBytes = 300 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("file: %w", err)
	}
	return &Endpoint{opts: opts, life: closing.New()}, nil
}

// Name returns the file name, relative to Dir, for partition p at time t,
// before any suffix.
func (e *Endpoint) Name(p int, t time.Time) string {
	t = t.UTC()
	r := strings.NewReplacer("{iothub}", e.opts.HubName, "{partition}", fmt.Sprint(p),
		"{YYYY}", fmt.Sprintf("%04d", t.Year()), "{MM}", fmt.Sprintf("%02d", t.Month()), "{DD}", fmt.Sprintf("%02d", t.Day()),
		"{HH}", fmt.Sprintf("%02d", t.Hour()), "{mm}", fmt.Sprintf("%02d", t.Minute()))
	return filepath.FromSlash(r.Replace(e.opts.FileNameFormat))
}

// Send writes batch as one file per partition (more when a partition's
// records exceed MaxChunkBytes), in the order of each partition's first
// message. See [endpoint.Endpoint].
func (e *Endpoint) Send(ctx context.Context, batch []*hubkit.Message) (int, error) {
	ctx, cancel, err := e.life.Bind(ctx)
	if err != nil {
		return 0, endpoint.Retry(e.opts.Name, err)
	}
	defer cancel()

	// Group the records into chunks: one per partition, more when one
	// would exceed MaxChunkBytes. chunkOf[i] is the chunk of batch[i].
	type chunk struct {
		buf       []byte
		count     int
		partition int
	}
	var chunks []*chunk
	open := map[int]*chunk{}
	chunkOf := make([]int, 0, len(batch))
	var refused error // for batch[len(chunkOf)], which cannot be encoded
	for _, m := range batch {
		var b []byte
		if e.opts.Encoding == JSON {
			var err error
			if b, err = record.Marshal(m); err != nil {
				refused = endpoint.Skip(e.opts.Name, err)
				break
			}
			b = append(b, '\n')
		} else {
			b = record.AppendAvro(nil, m)
		}
		p := e.opts.Partition(m)
		c := open[p]
		if c == nil || len(c.buf) > 0 && len(c.buf)+len(b) > e.opts.MaxChunkBytes {
			c = &chunk{partition: p}
			chunks = append(chunks, c)
			open[p] = c
		}
		c.buf = append(c.buf, b...)
		c.count++
		chunkOf = append(chunkOf, len(chunks)-1)
	}
	for done, c := range chunks {
		if err := ctx.Err(); err != nil {
			return accepted(chunkOf, done), endpoint.Retry(e.opts.Name, e.life.Cause(ctx))
		}
		data := c.buf
		if e.opts.Encoding != JSON {
			var err error
			if data, err = record.AvroFile(c.buf, c.count, e.opts.Encoding == AvroDeflate); err != nil {
				return accepted(chunkOf, done), endpoint.Retry(e.opts.Name, err)
			}
		}
		if err := e.write(c.partition, data); err != nil {
			return accepted(chunkOf, done), endpoint.Retry(e.opts.Name, err)
		}
	}
	return len(chunkOf), refused
}

// accepted returns how many leading messages lie in the first done chunks.
func accepted(chunkOf []int, done int) int {
	for i, c := range chunkOf {
		if c >= done {
			return i
		}
	}
	return len(chunkOf)
}

// write stores data durably as a new file for partition p.
func (e *Endpoint) write(p int, data []byte) error {
	name := filepath.Join(e.opts.Dir, e.Name(p, e.opts.Now()))
	dir := filepath.Dir(name)
	if err := e.mkdirAll(dir); err != nil {
		return fmt.Errorf("file: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("file: write %s: %w", tmp.Name(), err)
	}
	// Link, unlike Rename, never replaces a file: a taken name moves on to the next suffix.
	for n := 0; ; n++ {
		final := name
		if n > 0 {
			final = fmt.Sprintf("%s-%d", name, n)
		}
		err := os.Link(tmp.Name(), final)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("file: %w", err)
		}
	}
	return syncDir(dir)
}

// mkdirAll creates dir and fsyncs the parents of every directory it
// creates, so that the new entries survive a crash.
func (e *Endpoint) mkdirAll(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := e.mkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("file: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("file: sync %s: %w", dir, err)
	}
	return nil
}

// Close makes later sends return hubkit.ErrClosed. It is idempotent.
func (e *Endpoint) Close() error {
	e.life.Close()
	return nil
}
