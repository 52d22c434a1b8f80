// Boost.JSON, header-only: its implementation compiled once for every test that reads --json output.
#include <boost/json/src.hpp>
