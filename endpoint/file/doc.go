// Package file is an [endpoint.Endpoint] that writes messages to files laid
// out like IoT Hub's storage endpoint: one file per batch and partition,
// named by [Options.FileNameFormat], default
// {iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}, holding one JSON record
// per line:
//
//	{"EnqueuedTimeUtc":"…","Properties":{…},"SystemProperties":{…},"Body":…}
//
// Body holds the message's JSON when its content type is application/json
// and its encoding UTF-8, else the body in base64.
//
// IoT Hub writes a file when a batch reaches maxChunkSizeInBytes or
// batchFrequencyInSeconds has passed. Here the delivery engine forms the
// batches: set [endpoint.DeliveryConfig] Linger to the frequency and
// MaxBatchBytes to the chunk size. A batch larger than MaxChunkBytes is
// split into several files.
//
// Every file is written to a temporary file, fsynced, and then linked to
// its final name (never replacing a file: a name already taken gets a
// suffix -1, -2, …), and its directory is fsynced, before Send reports the
// batch accepted: an accepted batch survives a crash, and a reader never
// sees half a file.
package file
