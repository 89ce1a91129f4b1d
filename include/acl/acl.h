/* distbarrier: ACL umbrella header, as in CANN. */
#ifndef DISTBARRIER_ACL_ACL_H_
#define DISTBARRIER_ACL_ACL_H_

#include "acl_base.h"
#include "acl_rt.h"

#endif /* DISTBARRIER_ACL_ACL_H_ */
