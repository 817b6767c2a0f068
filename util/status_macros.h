// The two status macros the house style allows, and nothing more.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define WP_CONCAT_INNER_(a, b) a##b
#define WP_CONCAT_(a, b) WP_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                      \
  do {                                             \
    ::absl::Status wp_status_ = (expr);            \
    if (!wp_status_.ok()) return wp_status_;       \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, F())` or `ASSIGN_OR_RETURN(x, F())`.
#define ASSIGN_OR_RETURN(lhs, expr) \
  WP_ASSIGN_OR_RETURN_IMPL_(WP_CONCAT_(wp_statusor_, __LINE__), lhs, expr)
#define WP_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return std::move(tmp).status();  \
  lhs = std::move(tmp).value()
