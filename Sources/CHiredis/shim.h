// Thin shim over hiredis (Debian's libhiredis-dev, 0.14: the blocking API) for the Redis metadata
// sink and the workers' leases: the context's error text and the reply's fields, which Swift cannot
// read directly.
#include <hiredis/hiredis.h>

static inline const char *tb_redis_error(const redisContext *c) { return c->errstr; }
static inline int tb_redis_failed(const redisContext *c) { return c->err != 0; }
static inline int tb_redis_reply_type(const void *reply) { return ((const redisReply *)reply)->type; }
static inline const char *tb_redis_reply_text(const void *reply) {
    const redisReply *r = (const redisReply *)reply;
    return r->str ? r->str : "";
}
static inline size_t tb_redis_reply_length(const void *reply) { return ((const redisReply *)reply)->len; }
static inline long long tb_redis_reply_integer(const void *reply) { return ((const redisReply *)reply)->integer; }
static inline size_t tb_redis_reply_count(const void *reply) { return ((const redisReply *)reply)->elements; }
static inline const void *tb_redis_reply_element(const void *reply, size_t i) { return ((const redisReply *)reply)->element[i]; }
