// libyaml, the reference C YAML parser (Debian's libyaml-dev ships libyaml.a for static links).
#include <yaml.h>
