/* spfres.c - names of SPF results (see spfres.h). */
#include "spfres.h"

#include <strings.h>

static const char *const spf_res_names[] = {
    [SPF_RES_NONE] = "none",         [SPF_RES_NEUTRAL] = "neutral",
    [SPF_RES_PASS] = "pass",         [SPF_RES_FAIL] = "fail",
    [SPF_RES_SOFTFAIL] = "softfail", [SPF_RES_TEMPERROR] = "temperror",
    [SPF_RES_PERMERROR] = "permerror",
};

const char *spf_res_name(enum spf_res r)
{
    if ((unsigned)r >= sizeof(spf_res_names) / sizeof(spf_res_names[0]))
        return "permerror";
    return spf_res_names[r];
}

int spf_res_from_name(const char *name)
{
    for (unsigned i = 0; i < sizeof(spf_res_names) / sizeof(spf_res_names[0]); i++)
        if (strcasecmp(name, spf_res_names[i]) == 0)
            return (int)i;
    return -1;
}
