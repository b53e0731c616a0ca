// atomap._atomap: the C++ library bound with pybind11; python/atomap/__init__.py is the package
// users import. handles.h says how the objects stay valid; thread_box.h how snapshots that
// Python drops on another thread get back to theirs.
#include <pybind11/pybind11.h>

#include "atomap/version.h"
#include "codec.h"
#include "errors.h"
#include "handles.h"

PYBIND11_MODULE(_atomap, module) {
  namespace py = pybind11;
  using namespace atomap::python;
  module.doc() = "atomap's C++ library, bound (import atomap instead).";
  RegisterErrors(module);
  BindCodecs(module);
  BindSnapshot(module);
  BindTransaction(module);
  BindAtom(module);
  BindDomain(module);
  module.attr("__version__") = ATOMAP_VERSION_STRING;
  module.attr("FORMAT_VERSION") = ATOMAP_FORMAT_VERSION;
}
