// The extension module distbarrier._distbarrier: the library's public C API, one function per
// C call, Python types in and out. No logic of its own: arguments are converted, the call is
// made (without the GIL where it may block), and a failed call raises the exception that
// distbarrier.errors.from_status makes of the code, the C function's name and
// aclGetRecentErrMsg(). Handles (streams, communicators) travel as integers; 0 is the
// default stream.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "acl/acl.h"
#include "aclnnop/aclnn_distribute_barrier.h"
#include "aclnnop/aclnn_distribute_barrier_v2.h"
#include "distbarrier/distbarrier.h"
#include "hccl/hccl.h"

namespace py = pybind11;

namespace {

// A C call that returned non-zero; turned into a Python exception by the translator below.
struct CallFailed {
  int code;
  std::string api;
  std::string message;
};

void Check(int code, const char* api) {
  if (code != 0) throw CallFailed{code, api, aclGetRecentErrMsg()};
}

void CheckHccl(HcclResult code, const char* api) {
  if (code == HCCL_SUCCESS) return;
  std::string message = aclGetRecentErrMsg();
  if (message.empty()) message = HcclGetErrorString(code);
  throw CallFailed{static_cast<int>(code), api, std::move(message)};
}

template <typename Handle>
Handle FromInt(uintptr_t value) {
  return reinterpret_cast<Handle>(value);
}

template <typename Handle>
uintptr_t ToInt(Handle handle) {
  return reinterpret_cast<uintptr_t>(handle);
}

// int32 values in memory from aclrtMalloc, as the operator's V2 tensors require; freed (with
// its aclTensor) when the Python object goes, which the caller delays until the stream has
// passed the barrier that reads it.
class DeviceInts {
 public:
  explicit DeviceInts(const std::vector<int32_t>& values) : count_(values.size()) {
    const size_t bytes = values.size() * sizeof(int32_t);
    Check(aclrtMalloc(&data_, bytes, ACL_MEM_MALLOC_HUGE_FIRST), "aclrtMalloc");
    if (aclrtMemcpy(data_, bytes, values.data(), bytes, ACL_MEMCPY_HOST_TO_DEVICE) != ACL_SUCCESS) {
      CallFailed failed{ACL_ERROR_INVALID_PARAM, "aclrtMemcpy", aclGetRecentErrMsg()};
      aclrtFree(data_);
      throw failed;
    }
    const int64_t dims[1] = {static_cast<int64_t>(count_)};
    const int64_t strides[1] = {1};
    tensor_ = aclCreateTensor(dims, 1, ACL_INT32, strides, 0, ACL_FORMAT_ND, dims, 1, data_);
    if (tensor_ == nullptr) {
      CallFailed failed{ACLNN_ERR_PARAM_INVALID, "aclCreateTensor", aclGetRecentErrMsg()};
      aclrtFree(data_);
      throw failed;
    }
  }
  DeviceInts(const DeviceInts&) = delete;
  DeviceInts& operator=(const DeviceInts&) = delete;
  ~DeviceInts() {
    aclDestroyTensor(tensor_);
    aclrtFree(data_);
  }

  const aclTensor* tensor() const { return tensor_; }
  size_t size() const { return count_; }
  uintptr_t data() const { return ToInt(data_); }

 private:
  size_t count_;
  void* data_ = nullptr;
  aclTensor* tensor_ = nullptr;
};

// An aclTensor describing (not copying) memory the caller owns, destroyed at scope exit.
class TensorView {
 public:
  TensorView(uintptr_t data, const std::vector<int64_t>& dims, const std::vector<int64_t>& strides, int dtype)
      : tensor_(aclCreateTensor(dims.data(), dims.size(), static_cast<aclDataType>(dtype),
                                strides.empty() ? nullptr : strides.data(), 0, ACL_FORMAT_ND, dims.data(), dims.size(),
                                FromInt<void*>(data))) {
    if (tensor_ == nullptr) throw CallFailed{ACLNN_ERR_PARAM_INVALID, "aclCreateTensor", aclGetRecentErrMsg()};
  }
  TensorView(const TensorView&) = delete;
  TensorView& operator=(const TensorView&) = delete;
  ~TensorView() { aclDestroyTensor(tensor_); }

  aclTensor* get() const { return tensor_; }

 private:
  aclTensor* tensor_;
};

// Both stages of the operator: V2 when a timeOut or an elasticInfo tensor is given, V1
// otherwise. Returns once the barrier is enqueued on `stream`.
void DistributeBarrier(uintptr_t x_data, const std::vector<int64_t>& x_dims, const std::vector<int64_t>& x_strides,
                       int x_dtype, const std::string& group, int64_t world_size, uintptr_t stream,
                       const DeviceInts* time_out, const DeviceInts* elastic_info) {
  if (x_strides.size() != x_dims.size()) throw py::value_error("x_ref: strides and dims differ in length");
  TensorView x_ref(x_data, x_dims, x_strides, x_dtype);
  py::gil_scoped_release no_gil;
  uint64_t workspace_size = 0;
  aclOpExecutor* executor = nullptr;
  if (time_out == nullptr && elastic_info == nullptr) {
    Check(aclnnDistributeBarrierGetWorkspaceSize(x_ref.get(), group.c_str(), world_size, &workspace_size, &executor),
          "aclnnDistributeBarrierGetWorkspaceSize");
    // workspaceSize is 0 on simulated devices; a non-zero one is refused by stage 2 with its message.
    Check(aclnnDistributeBarrier(nullptr, workspace_size, executor, FromInt<aclrtStream>(stream)),
          "aclnnDistributeBarrier");
  } else {
    Check(aclnnDistributeBarrierV2GetWorkspaceSize(x_ref.get(), time_out ? time_out->tensor() : nullptr,
                                                   elastic_info ? elastic_info->tensor() : nullptr, group.c_str(),
                                                   world_size, &workspace_size, &executor),
          "aclnnDistributeBarrierV2GetWorkspaceSize");
    Check(aclnnDistributeBarrierV2(nullptr, workspace_size, executor, FromInt<aclrtStream>(stream)),
          "aclnnDistributeBarrierV2");
  }
}

// (sequence, rankCount, lastRank, spreadNs, arrivalNs per rank)
std::tuple<uint64_t, uint32_t, int32_t, int64_t, std::vector<int64_t>> GetLastBarrier(const std::string& group) {
  distbarrierBarrierInfo info{};
  Check(distbarrierGetLastBarrier(group.c_str(), &info, nullptr, 0), "distbarrierGetLastBarrier");
  std::vector<int64_t> arrivals(info.rankCount);
  Check(distbarrierGetLastBarrier(group.c_str(), &info, arrivals.data(), static_cast<uint32_t>(arrivals.size())),
        "distbarrierGetLastBarrier");
  return {info.sequence, info.rankCount, info.lastRank, info.spreadNs, std::move(arrivals)};
}

// Per rank: (barriers, timesLast, meanLatenessNs, maxLatenessNs)
std::vector<std::tuple<uint64_t, uint64_t, double, int64_t>> GetRankStats(const std::string& group) {
  distbarrierBarrierInfo info{};
  Check(distbarrierGetLastBarrier(group.c_str(), &info, nullptr, 0), "distbarrierGetLastBarrier");
  std::vector<distbarrierRankStats> stats(info.rankCount);
  Check(distbarrierGetRankStats(group.c_str(), stats.data(), static_cast<uint32_t>(stats.size())),
        "distbarrierGetRankStats");
  std::vector<std::tuple<uint64_t, uint64_t, double, int64_t>> rows;
  for (const distbarrierRankStats& s : stats)
    rows.emplace_back(s.barriers, s.timesLast, s.meanLatenessNs, s.maxLatenessNs);
  return rows;
}

}  // namespace

PYBIND11_MODULE(_distbarrier, m) {
  m.doc() =
      "The public C API of libdistbarrier (ACL runtime, HCCL, aclnnDistributeBarrier); use the distbarrier package";

  py::register_exception_translator([](std::exception_ptr thrown) {
    try {
      if (thrown) std::rethrow_exception(thrown);
    } catch (const CallFailed& failed) {
      py::object error =
          py::module_::import("distbarrier.errors").attr("from_status")(failed.code, failed.api, failed.message);
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())), error.ptr());
    }
  });

  m.attr("ROOT_INFO_BYTES") = HCCL_ROOT_INFO_BYTES;
  m.def("version", [] { return std::string(distbarrierVersion()); });

  // Devices and streams.
  m.def("init", [] { Check(aclInit(nullptr), "aclInit"); });
  m.def("set_device", [](int32_t device) { Check(aclrtSetDevice(device), "aclrtSetDevice"); });
  m.def("reset_device", [](int32_t device) { Check(aclrtResetDevice(device), "aclrtResetDevice"); });
  m.def("get_device", [] {
    int32_t device = -1;
    Check(aclrtGetDevice(&device), "aclrtGetDevice");
    return device;
  });
  m.def("device_count", [] {
    uint32_t count = 0;
    Check(aclrtGetDeviceCount(&count), "aclrtGetDeviceCount");
    return count;
  });
  m.def("synchronize_device", [] {
    py::gil_scoped_release no_gil;
    Check(aclrtSynchronizeDevice(), "aclrtSynchronizeDevice");
  });
  m.def("create_stream", [] {
    aclrtStream stream = nullptr;
    Check(aclrtCreateStream(&stream), "aclrtCreateStream");
    return ToInt(stream);
  });
  m.def("destroy_stream", [](uintptr_t stream) {
    py::gil_scoped_release no_gil;  // waits for the stream's work
    Check(aclrtDestroyStream(FromInt<aclrtStream>(stream)), "aclrtDestroyStream");
  });
  m.def(
      "synchronize_stream",
      [](uintptr_t stream, int32_t timeout_ms) {
        py::gil_scoped_release no_gil;
        Check(aclrtSynchronizeStreamWithTimeout(FromInt<aclrtStream>(stream), timeout_ms),
              "aclrtSynchronizeStreamWithTimeout");
      },
      py::arg("stream"), py::arg("timeout_ms") = -1);
  m.def("stream_done", [](uintptr_t stream) {
    aclrtStreamStatus status = ACL_STREAM_STATUS_NOT_READY;
    Check(aclrtStreamQuery(FromInt<aclrtStream>(stream), &status), "aclrtStreamQuery");
    return status == ACL_STREAM_STATUS_COMPLETE;
  });

  // Communicators.
  m.def("comm_init_all", [](std::vector<int32_t> devices) {
    std::vector<HcclComm> comms(devices.size());
    {
      py::gil_scoped_release no_gil;
      CheckHccl(HcclCommInitAll(static_cast<uint32_t>(devices.size()), devices.data(), comms.data()),
                "HcclCommInitAll");
    }
    std::vector<uintptr_t> handles;
    for (HcclComm comm : comms) handles.push_back(ToInt(comm));
    return handles;
  });
  m.def("get_root_info", [] {
    HcclRootInfo root{};
    CheckHccl(HcclGetRootInfo(&root), "HcclGetRootInfo");
    return py::bytes(root.internal, sizeof(root.internal));
  });
  m.def("comm_init_root_info", [](uint32_t ranks, const py::bytes& root_bytes, uint32_t rank) {
    std::string bytes = root_bytes;
    if (bytes.size() != HCCL_ROOT_INFO_BYTES) {
      throw py::value_error("root info must be " + std::to_string(HCCL_ROOT_INFO_BYTES) + " bytes, not " +
                            std::to_string(bytes.size()));
    }
    HcclRootInfo root{};
    bytes.copy(root.internal, sizeof(root.internal));
    HcclComm comm = nullptr;
    {
      py::gil_scoped_release no_gil;  // waits for every rank
      CheckHccl(HcclCommInitRootInfo(ranks, &root, rank, &comm), "HcclCommInitRootInfo");
    }
    return ToInt(comm);
  });
  m.def("comm_destroy", [](uintptr_t comm) {
    py::gil_scoped_release no_gil;
    CheckHccl(HcclCommDestroy(FromInt<HcclComm>(comm)), "HcclCommDestroy");
  });
  m.def("comm_name", [](uintptr_t comm) {
    char name[COMM_NAME_MAX_LENGTH] = {};
    CheckHccl(HcclGetCommName(FromInt<HcclComm>(comm), name), "HcclGetCommName");
    return std::string(name);
  });
  m.def("comm_rank", [](uintptr_t comm) {
    uint32_t rank = 0;
    CheckHccl(HcclGetRankId(FromInt<HcclComm>(comm), &rank), "HcclGetRankId");
    return rank;
  });
  m.def("comm_size", [](uintptr_t comm) {
    uint32_t size = 0;
    CheckHccl(HcclGetRankSize(FromInt<HcclComm>(comm), &size), "HcclGetRankSize");
    return size;
  });

  // The operator.
  py::class_<DeviceInts>(m, "DeviceInts", "int32 values copied into aclrtMalloc memory, as a 1-D aclTensor")
      .def(py::init<const std::vector<int32_t>&>())
      .def("__len__", &DeviceInts::size)
      .def_property_readonly("data_ptr", &DeviceInts::data);
  m.def("distribute_barrier", &DistributeBarrier, py::arg("x_data"), py::arg("x_dims"), py::arg("x_strides"),
        py::arg("x_dtype"), py::arg("group"), py::arg("world_size"), py::arg("stream"), py::arg("time_out").none(true),
        py::arg("elastic_info").none(true));

  // Statistics (distbarrier/distbarrier.h).
  m.def("last_barrier", &GetLastBarrier);
  m.def("rank_stats", &GetRankStats);
  m.def("reset_stats",
        [](const std::string& group) { Check(distbarrierResetStats(group.c_str()), "distbarrierResetStats"); });
  m.def("set_stats_enabled",
        [](bool enabled) { Check(distbarrierSetStatsEnabled(enabled ? 1 : 0), "distbarrierSetStatsEnabled"); });
}
