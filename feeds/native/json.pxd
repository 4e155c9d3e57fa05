# The part of yyjson (feeds/native/vendor, MIT) the native decoders use: read a frame into an
# immutable document, walk objects and arrays, read strings and numbers. yyjson is the parser
# orjson itself is built on; here it is called from C, so no Python object is made per value.
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t


cdef extern from "vendor/yyjson.h" nogil:
    ctypedef struct yyjson_alc:
        pass
    ctypedef struct yyjson_doc:
        pass
    ctypedef struct yyjson_val:
        pass
    ctypedef struct yyjson_read_err:
        int code
        const char *msg
        size_t pos
    ctypedef struct yyjson_arr_iter:
        pass
    ctypedef struct yyjson_obj_iter:
        pass
    ctypedef uint8_t yyjson_type
    ctypedef uint32_t yyjson_read_flag

    yyjson_type YYJSON_TYPE_NONE
    yyjson_type YYJSON_TYPE_RAW
    yyjson_type YYJSON_TYPE_NULL
    yyjson_type YYJSON_TYPE_BOOL
    yyjson_type YYJSON_TYPE_NUM
    yyjson_type YYJSON_TYPE_STR
    yyjson_type YYJSON_TYPE_ARR
    yyjson_type YYJSON_TYPE_OBJ

    yyjson_alc *yyjson_alc_dyn_new()
    void yyjson_alc_dyn_free(yyjson_alc *alc)
    yyjson_doc *yyjson_read_opts(char *dat, size_t len, yyjson_read_flag flg,
                                 const yyjson_alc *alc, yyjson_read_err *err)
    void yyjson_doc_free(yyjson_doc *doc)
    yyjson_val *yyjson_doc_get_root(yyjson_doc *doc)

    yyjson_type yyjson_get_type(yyjson_val *val)
    bint yyjson_is_null(yyjson_val *val)
    bint yyjson_is_bool(yyjson_val *val)
    bint yyjson_is_uint(yyjson_val *val)
    bint yyjson_is_sint(yyjson_val *val)
    bint yyjson_is_int(yyjson_val *val)
    bint yyjson_is_real(yyjson_val *val)
    bint yyjson_is_num(yyjson_val *val)
    bint yyjson_is_str(yyjson_val *val)
    bint yyjson_is_arr(yyjson_val *val)
    bint yyjson_is_obj(yyjson_val *val)
    bint yyjson_get_bool(yyjson_val *val)
    uint64_t yyjson_get_uint(yyjson_val *val)
    int64_t yyjson_get_sint(yyjson_val *val)
    double yyjson_get_real(yyjson_val *val)
    const char *yyjson_get_str(yyjson_val *val)
    size_t yyjson_get_len(yyjson_val *val)
    bint yyjson_equals_strn(yyjson_val *val, const char *s, size_t n)

    size_t yyjson_arr_size(yyjson_val *arr)
    yyjson_val *yyjson_arr_get(yyjson_val *arr, size_t idx)
    yyjson_val *yyjson_arr_get_first(yyjson_val *arr)
    yyjson_val *unsafe_yyjson_get_next(yyjson_val *val)   # the value after val (arrays: the next element)

    size_t yyjson_obj_size(yyjson_val *obj)
    yyjson_val *yyjson_obj_getn(yyjson_val *obj, const char *key, size_t key_len)
    yyjson_val *yyjson_obj_get(yyjson_val *obj, const char *key)

    # unchecked accessors, for a caller that has checked the type (a key of an object is a string)
    yyjson_val *unsafe_yyjson_get_first(yyjson_val *ctn)   # a container's first child (object: first key)
    const char *unsafe_yyjson_get_str(yyjson_val *val)
    size_t unsafe_yyjson_get_len(yyjson_val *val)          # string bytes / array elements / object pairs
