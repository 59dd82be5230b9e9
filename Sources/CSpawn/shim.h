// glibc's posix_spawn extensions (since 2.34), which Swift's Glibc module does not declare: it
// reads <spawn.h> without _DEFAULT_SOURCE's __USE_MISC.
#include <spawn.h>

extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);
