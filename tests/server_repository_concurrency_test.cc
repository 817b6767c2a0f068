// The model repository under concurrent use, without gRPC so ThreadSanitizer
// sees every hand-off (scripts/tsan.sh): streams look models up, make sessions
// and score windows while another thread keeps adding, reloading and unloading
// a version. Lookups of the versions that stay must never fail, a session keeps
// its version alive after an unload, and every run gives the same windows as a
// run made before the threads started.
#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "server/model_repository.h"
#include "server/session.h"
#include "tests/server_test_util.h"

namespace wavepool::testing {
namespace {

struct StreamRun {
  std::vector<std::string> labels;  // top label per window, in order
  absl::Status status;
};

StreamRun Stream(const std::shared_ptr<const server::LoadedModel>& model,
           const std::vector<float>& signal) {
  StreamRun run;
  v1::StreamConfig config;
  config.set_model(model->name);
  config.set_sample_rate_hz(8000);
  auto session = server::Session::Create(config, model);
  if (!session.ok()) {
    run.status = session.status();
    return run;
  }
  auto window = [&](v1::WindowResult&& w) {
    run.labels.push_back(w.top_size() > 0 ? w.top(0).label() : "");
  };
  auto event = [](v1::Event&&) {};
  const server::SessionOutput sink{window, event};
  v1::SampleChunk chunk;
  chunk.mutable_values()->Add(signal.begin(), signal.end());
  run.status = (*session)->Push(chunk, sink);
  if (run.status.ok()) run.status = (*session)->Finish(sink, 0).status();
  return run;
}

TEST(RepositoryConcurrency, LookupsAndStreamsRunWhileVersionsComeAndGo) {
  const auto root = MakeTempDir("wavepool-repo-conc");
  WriteModel(root, SmallSpecJson("small", 1), 11);
  WriteModel(root, SmallSpecJson("small", 2), 22);
  // Version 3 is written once to a staging folder and moved in and out.
  const auto staging = MakeTempDir("wavepool-repo-staging");
  WriteModel(staging, SmallSpecJson("small", 3), 33);
  auto repo = server::ModelRepository::Open(root.string());
  ASSERT_TRUE(repo.ok()) << repo.status();

  const std::vector<float> signal = TestSignal(8000, 5);
  auto v2 = (*repo)->Find("small", 2);
  ASSERT_TRUE(v2.ok()) << v2.status();
  const StreamRun reference = Stream(*v2, signal);
  ASSERT_TRUE(reference.status.ok()) << reference.status;
  ASSERT_GT(reference.labels.size(), 10u);

  std::atomic<bool> stop{false};
  std::atomic<int> streams{0}, failures{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        auto m = (*repo)->Find("small", 2);
        if (!m.ok()) {
          ++failures;
          continue;
        }
        const StreamRun run = Stream(*m, signal);
        if (!run.status.ok() || run.labels != reference.labels) ++failures;
        // The newest version may be 2 or 3 at any moment; a session made on 3
        // keeps scoring after 3 is unloaded.
        auto latest = (*repo)->Find("small", 0);
        if (!latest.ok()) {
          ++failures;
          continue;
        }
        const StreamRun any = Stream(*latest, signal);
        if (!any.status.ok() || any.labels.size() != reference.labels.size()) ++failures;
        if ((*repo)->List().size() < 2) ++failures;
        ++streams;
      }
    });
  }
  const auto v3_dir = root / "small" / "3";
  // At least 60 cycles, and until the readers have overlapped them a while.
  int cycles = 0;
  for (; cycles < 60 || streams.load() < 30; ++cycles) {
    std::filesystem::rename(staging / "small" / "3", v3_dir);
    const server::ReloadResult added = (*repo)->Reload();
    EXPECT_TRUE(added.errors.empty());
    auto gone = (*repo)->Unload("small", 3);
    EXPECT_TRUE(gone.ok()) << gone.status();
    std::filesystem::rename(v3_dir, staging / "small" / "3");
    (*repo)->Reload();
  }
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GE(streams.load(), 30);
  auto after = (*repo)->Find("small", 0);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ((*after)->version, 2);
  std::filesystem::remove_all(root);
  std::filesystem::remove_all(staging);
}

}  // namespace
}  // namespace wavepool::testing
