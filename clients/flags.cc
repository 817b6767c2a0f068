#include "clients/flags.h"

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, server, "localhost:50051", "server address HOST:PORT");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA bundle to verify the server with; any --tls-* flag turns TLS on (without "
          "--tls-ca the system's roots verify the server)");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate for mutual TLS (with --tls-key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert");
ABSL_FLAG(std::string, tls_server_name, "",
          "name to verify in the server's certificate instead of --server's host");
ABSL_FLAG(std::string, token, "",
          "bearer token sent as `authorization: Bearer TOKEN` on every call (default: "
          "$WAVEPOOL_TOKEN; the environment keeps it out of `ps`)");
ABSL_FLAG(double, timeout_s, 0, "deadline for each call in seconds (0 = none)");
ABSL_FLAG(std::string, model, "", "model name");
ABSL_FLAG(int64_t, version, 0, "model version (0 = latest)");
ABSL_FLAG(bool, realtime, false, "stream at the signal's real-time pace");
ABSL_FLAG(double, chunk_ms, 100, "milliseconds of signal per message when streaming");
ABSL_FLAG(uint32_t, top_k, 1, "labels per window");
ABSL_FLAG(bool, json, false, "print responses as JSON lines");
ABSL_FLAG(std::vector<std::string>, override, {},
          "pooling overrides for describe and eval, e.g. pool1.stride_time=4,pool1.blur=3 "
          "(comma-separated)");
ABSL_FLAG(std::string, model_dir, "",
          "describe: read the spec from this model folder instead of asking the server");
ABSL_FLAG(std::string, service, "", "health: service name (empty = the whole server)");
ABSL_FLAG(std::string, spec, "", "init-model / train: the spec JSON to start from");
ABSL_FLAG(std::string, out, "", "init-model / train / ensemble: output model folder");
ABSL_FLAG(uint64_t, seed, 1, "init-model / train: random seed");
ABSL_FLAG(std::string, data, "", "train / eval: the data folder (e.g. ../shared/data/fsdd)");
ABSL_FLAG(std::string, split, "official",
          "train / eval: official (takes 0-4 test), speaker:NAME (leave NAME out), or all");
ABSL_FLAG(int, epochs, 40, "train: passes over the training clips");
ABSL_FLAG(int, batch_size, 32, "train: examples per step");
ABSL_FLAG(double, lr, 2e-3, "train: peak learning rate (warm-up, then cosine to lr/100)");
ABSL_FLAG(double, weight_decay, 1e-3, "train: decoupled weight decay (conv/dense weights)");
ABSL_FLAG(std::string, optimizer, "adamw", "train: adamw or sgd (momentum 0.9)");
ABSL_FLAG(float, label_smoothing, 0.05f, "train: label smoothing of the cross-entropy targets");
ABSL_FLAG(int, threads, 2, "train: threads (the batch is split into this many fixed shards)");
ABSL_FLAG(bool, no_augment, false, "train: turn augmentation off");
ABSL_FLAG(int, eval_every, 5, "train: evaluate on the test clips every N epochs");
ABSL_FLAG(std::string, confusion_svg, "", "eval: also write the confusion matrix as SVG here");
ABSL_FLAG(bool, continuous, false,
          "eval: stream long sequences of held-out digits through --server and score the events");
ABSL_FLAG(int, digits_per_stream, 10, "eval --continuous: digits per stream");
ABSL_FLAG(bool, verbose, false, "eval --continuous: print each stream's reference and events");
ABSL_FLAG(bool, shift_consistency, false,
          "eval: also measure how often the top class stays the same when the input is "
          "delayed by 1..--max-shift samples (Zhang 2019)");
ABSL_FLAG(int, max_shift, 8, "eval --shift-consistency: largest shift, in samples at the model rate");
ABSL_FLAG(int, shift_step, 1, "eval --shift-consistency: shifts step, max-shift, in samples");
ABSL_FLAG(std::string, tta_shifts, "",
          "eval: test-time shift pooling, e.g. 0,40,80 or =-4,0,4: classify each input at "
          "these delays (samples; negative = advanced) and pool the scores (--tta-pool)");
ABSL_FLAG(std::string, tta_pool, "avg", "eval --tta-shifts: avg or max of the class scores");
ABSL_FLAG(bool, events_only, false, "stream: print only events (and the summary)");
ABSL_FLAG(int, ecg_n_per_epoch, 12000, "train (ECG): N beats drawn afresh each epoch (all other classes are used every epoch)");
ABSL_FLAG(double, ecg_morph_dropout, 0.0,
          "train (ECG): probability of blanking a beat's waveform channels so only its RR context is "
          "seen, which makes the network learn the rhythm cues that carry across patients");
