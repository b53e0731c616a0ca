#include "codec.h"

#include <Python.h>

#include <cstdint>
#include <cstring>
#include <limits>

#include "atomap/codec.h"

namespace atomap::python {
namespace {

namespace py = pybind11;

template <class T>
std::string Native(T value) {
  const auto bytes = Codec<T>::Encode(value);
  return std::string(std::string_view(bytes));
}

template <class T>
py::object FromNative(std::string_view bytes) {
  std::optional<T> value = Codec<T>::Decode(bytes);
  if (!value.has_value()) return py::object();
  if constexpr (std::is_floating_point_v<T>) {
    return py::float_(*value);
  } else {
    return py::int_(*value);
  }
}

void RequireInt(py::handle value, CodecKind codec) {
  // bool is an int in Python; accepted, as struct.pack accepts it.
  if (!PyLong_Check(value.ptr())) {
    throw py::type_error(std::string("atomap.") + CodecName(codec) + " needs an int, not " +
                         std::string(py::str(py::type::of(value).attr("__name__"))));
  }
}

[[noreturn]] void Overflow(CodecKind codec, const std::string& number) {
  const std::string message =
      std::string("atomap.") + CodecName(codec) + ": " + number + " is out of range";
  PyErr_SetString(PyExc_OverflowError, message.c_str());
  throw py::error_already_set();
}

// An integer of the codec, raising OverflowError (C3).
template <class T>
T IntOf(py::handle value, CodecKind codec) {
  RequireInt(value, codec);
  if constexpr (std::is_unsigned_v<T>) {
    const unsigned long long n = PyLong_AsUnsignedLongLong(value.ptr());
    if (n == static_cast<unsigned long long>(-1) && PyErr_Occurred()) throw py::error_already_set();
    if (n > std::numeric_limits<T>::max()) Overflow(codec, std::to_string(n));
    return static_cast<T>(n);
  } else {
    const long long n = PyLong_AsLongLong(value.ptr());
    if (n == -1 && PyErr_Occurred()) throw py::error_already_set();
    if (n < std::numeric_limits<T>::min() || n > std::numeric_limits<T>::max()) {
      Overflow(codec, std::to_string(n));
    }
    return static_cast<T>(n);
  }
}

std::string BytesOf(py::handle value) {
  if (PyBytes_Check(value.ptr())) {
    return std::string(PyBytes_AS_STRING(value.ptr()), PyBytes_GET_SIZE(value.ptr()));
  }
  if (PyObject_CheckBuffer(value.ptr())) {
    Py_buffer view;
    if (PyObject_GetBuffer(value.ptr(), &view, PyBUF_SIMPLE) != 0) throw py::error_already_set();
    std::string copy(static_cast<const char*>(view.buf), static_cast<std::size_t>(view.len));
    PyBuffer_Release(&view);
    return copy;
  }
  throw py::type_error("atomap.BYTES needs bytes (or bytearray, memoryview), not " +
                       std::string(py::str(py::type::of(value).attr("__name__"))));
}

std::string StrOf(py::handle value) {
  if (!PyUnicode_Check(value.ptr())) {
    throw py::type_error("atomap.STR needs a str, not " +
                         std::string(py::str(py::type::of(value).attr("__name__"))));
  }
  PyObject* encoded = PyUnicode_AsEncodedString(value.ptr(), "utf-8", "surrogateescape");
  if (encoded == nullptr) throw py::error_already_set();
  py::object owner = py::reinterpret_steal<py::object>(encoded);
  return std::string(PyBytes_AS_STRING(encoded), PyBytes_GET_SIZE(encoded));
}

}  // namespace

const char* CodecName(CodecKind codec) {
  switch (codec) {
    case CodecKind::kBytes:
      return "BYTES";
    case CodecKind::kStr:
      return "STR";
    case CodecKind::kU64:
      return "U64";
    case CodecKind::kI64:
      return "I64";
    case CodecKind::kU32:
      return "U32";
    case CodecKind::kI32:
      return "I32";
    case CodecKind::kF64:
      return "F64";
  }
  return "?";
}

std::string Encode(CodecKind codec, py::handle value) {
  switch (codec) {
    case CodecKind::kBytes:
      return BytesOf(value);
    case CodecKind::kStr:
      return StrOf(value);
    case CodecKind::kU64:
      return Native(IntOf<std::uint64_t>(value, codec));
    case CodecKind::kI64:
      return Native(IntOf<std::int64_t>(value, codec));
    case CodecKind::kU32:
      return Native(IntOf<std::uint32_t>(value, codec));
    case CodecKind::kI32:
      return Native(IntOf<std::int32_t>(value, codec));
    case CodecKind::kF64: {
      if (!PyFloat_Check(value.ptr()) && !PyLong_Check(value.ptr())) {
        throw py::type_error("atomap.F64 needs a float, not " +
                             std::string(py::str(py::type::of(value).attr("__name__"))));
      }
      const double d = PyFloat_AsDouble(value.ptr());
      if (d == -1.0 && PyErr_Occurred()) throw py::error_already_set();
      return Native(d);
    }
  }
  throw py::value_error("atomap: unknown codec");
}

py::object Decode(CodecKind codec, std::string_view bytes) {
  switch (codec) {
    case CodecKind::kBytes:
      return py::bytes(bytes.data(), bytes.size());
    case CodecKind::kStr: {
      PyObject* text = PyUnicode_DecodeUTF8(bytes.data(), static_cast<Py_ssize_t>(bytes.size()),
                                            "surrogateescape");
      if (text == nullptr) throw py::error_already_set();
      return py::reinterpret_steal<py::object>(text);
    }
    case CodecKind::kU64:
      return FromNative<std::uint64_t>(bytes);
    case CodecKind::kI64:
      return FromNative<std::int64_t>(bytes);
    case CodecKind::kU32:
      return FromNative<std::uint32_t>(bytes);
    case CodecKind::kI32:
      return FromNative<std::int32_t>(bytes);
    case CodecKind::kF64:
      return FromNative<double>(bytes);
  }
  return py::object();
}

py::object DecodeOrThrow(CodecKind codec, std::string_view bytes) {
  py::object value = Decode(codec, bytes);
  if (!value) {
    throw py::value_error(std::string("atomap.") + CodecName(codec) + " cannot decode " +
                          std::to_string(bytes.size()) + " bytes");
  }
  return value;
}

void BindCodecs(py::module_& module) {
  py::enum_<CodecKind> codec(module, "Codec",
                             "How a typed atom stores its keys or values: exactly as the C++ "
                             "atomap::Codec<T> does, so C++ and Python read each other's entries.");
  codec.value("BYTES", CodecKind::kBytes, "bytes as they are (the default)")
      .value("STR", CodecKind::kStr, "str as its UTF-8 bytes: C++ std::string")
      .value("U64", CodecKind::kU64, "int as 8 native-order bytes: C++ std::uint64_t")
      .value("I64", CodecKind::kI64, "int as 8 native-order bytes: C++ std::int64_t")
      .value("U32", CodecKind::kU32, "int as 4 native-order bytes: C++ std::uint32_t")
      .value("I32", CodecKind::kI32, "int as 4 native-order bytes: C++ std::int32_t")
      .value("F64", CodecKind::kF64, "float as 8 native-order bytes: C++ double")
      .export_values();
  codec.def(
      "encode", [](CodecKind self, py::handle value) { return py::bytes(Encode(self, value)); },
      py::arg("value"), "The bytes this codec stores for `value`.");
  codec.def(
      "decode",
      [](CodecKind self, const py::bytes& data) {
        return DecodeOrThrow(self, std::string_view(data));
      },
      py::arg("data"), "The value these stored bytes hold (ValueError on a size mismatch).");
}

}  // namespace atomap::python
