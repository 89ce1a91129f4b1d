/* distbarrier: this project's own extensions beyond CANN. C API. */
#ifndef DISTBARRIER_DISTBARRIER_H_
#define DISTBARRIER_DISTBARRIER_H_

#include "../acl/acl_base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DISTBARRIER_VERSION_MAJOR 0
#define DISTBARRIER_VERSION_MINOR 1
#define DISTBARRIER_VERSION_PATCH 0

/* The library's version as "MAJOR.MINOR.PATCH" (the library's, not the header's). */
ACL_FUNC_VISIBILITY const char *distbarrierVersion(void);

#ifdef __cplusplus
}
#endif

#endif /* DISTBARRIER_DISTBARRIER_H_ */
