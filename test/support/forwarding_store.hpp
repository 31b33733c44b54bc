// The base of the tests' ObjectStore decorators (recording, counting, failing, redirecting
// stores): every call goes to an inner store unless a subclass overrides it.
#pragma once

#include <filesystem>
#include <memory>
#include <shardy/object_store.hpp>
#include <string>
#include <utility>

namespace shardy::test {

class ForwardingStore : public ObjectStore {
 public:
  explicit ForwardingStore(std::shared_ptr<ObjectStore> inner) : inner_(std::move(inner)) {}

  boost::asio::awaitable<GetResult> get(std::string url, GetOptions o) override {
    return inner_->get(std::move(url), std::move(o));
  }
  boost::asio::awaitable<ObjectInfo> head(std::string url) override {
    return inner_->head(std::move(url));
  }
  boost::asio::awaitable<PutResult> put(std::string url, std::string body, PutOptions o) override {
    return inner_->put(std::move(url), std::move(body), std::move(o));
  }
  boost::asio::awaitable<PutResult> put_file(std::string url, std::filesystem::path file,
                                             PutOptions o) override {
    return inner_->put_file(std::move(url), std::move(file), std::move(o));
  }
  boost::asio::awaitable<void> remove(std::string url) override {
    return inner_->remove(std::move(url));
  }
  boost::asio::awaitable<ListResult> list(std::string prefix, ListOptions o) override {
    return inner_->list(std::move(prefix), std::move(o));
  }
  boost::asio::awaitable<ObjectInfo> download(std::string url, std::filesystem::path file,
                                              ProgressCallback progress,
                                              std::string if_match) override {
    return inner_->download(std::move(url), std::move(file), std::move(progress),
                            std::move(if_match));
  }

 private:
  std::shared_ptr<ObjectStore> inner_;
};

}  // namespace shardy::test
