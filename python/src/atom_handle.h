// atomap.Atom's C++ side: an atom handle with the codecs its entries use (handles.h H1).
//
// Thread safety: an Atom may be used from any thread at once (atomap::Atom is); every call that
// pins first drains the calling thread's box (thread_box.h B4).
#ifndef ATOMAP_PYTHON_SRC_ATOM_HANDLE_H_
#define ATOMAP_PYTHON_SRC_ATOM_HANDLE_H_

#include <pybind11/pybind11.h>

#include <string>

#include "atomap/atom.h"
#include "handles.h"

namespace atomap::python {

class PyAtom {
 public:
  PyAtom(DomainRef domain, Atom atom, Codecs codecs)
      : domain_(std::move(domain)), atom_(atom), codecs_(codecs) {}

  // The atom, with the domain checked usable (H2, H3) and this thread's box drained (B4).
  Atom& atom() {
    CheckUsable(*domain_);
    ThreadBox::Drain();
    return atom_;
  }
  const DomainRef& domain() const { return domain_; }
  const Codecs& codecs() const { return codecs_; }
  std::string name() const { return std::string(atom_.name()); }

 private:
  DomainRef domain_;
  Atom atom_;
  Codecs codecs_;
};

// atom() (create) or find_atom() of `domain` (a copy: Domain.close() on another thread while the
// GIL is released must not empty it under this call).
PyAtom MakeAtom(DomainRef domain, const std::string& name, Codecs codecs, bool create);

}  // namespace atomap::python

#endif  // ATOMAP_PYTHON_SRC_ATOM_HANDLE_H_
