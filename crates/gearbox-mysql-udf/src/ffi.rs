//! The C UDF ABI of MySQL and MariaDB (`mysql_com.h` / `udf_registration_types.h`): the two
//! structs the server passes in, and safe readers and writers over them.

use std::os::raw::{c_char, c_int, c_uint, c_ulong, c_void};

/// `my_bool`: a C `char`, 0 or 1.
pub type MyBool = c_char;

/// `Item_result::STRING_RESULT`: in `xxx_init`, asks the server to pass an argument as a string.
pub const STRING_RESULT: c_int = 0;

/// The size of the `message` buffer given to `xxx_init` (`MYSQL_ERRMSG_SIZE`).
pub const ERRMSG_SIZE: usize = 512;

/// `UDF_INIT`: per-call-site state, shared by `xxx_init`, `xxx` and `xxx_deinit`.
#[repr(C)]
pub struct UdfInit {
    /// 1 if the function can return NULL.
    pub maybe_null: MyBool,
    /// Decimals, for real functions.
    pub decimals: c_uint,
    /// The longest result, for string functions.
    pub max_length: c_ulong,
    /// Free for the function's own data.
    pub ptr: *mut c_char,
    /// 1 if the function always returns the same value.
    pub const_item: MyBool,
    /// Reserved.
    pub extension: *mut c_void,
}

/// `UDF_ARGS`: the arguments of one call.
#[repr(C)]
pub struct UdfArgs {
    /// Number of arguments.
    pub arg_count: c_uint,
    /// The type of each argument (`Item_result`, a C enum).
    pub arg_type: *mut c_int,
    /// Each argument's value; NULL for an SQL NULL.
    pub args: *mut *mut c_char,
    /// Each argument's length in bytes.
    pub lengths: *mut c_ulong,
    /// 1 for each argument that may be NULL.
    pub maybe_null: *mut c_char,
    /// Each argument's name or expression text.
    pub attributes: *mut *const c_char,
    /// The length of each attribute.
    pub attribute_lengths: *mut c_ulong,
    /// Reserved.
    pub extension: *mut c_void,
}

impl UdfArgs {
    /// The number of arguments.
    pub fn count(&self) -> usize {
        self.arg_count as usize
    }

    /// Asks the server to convert every argument to a string (call from `xxx_init`).
    ///
    /// # Safety
    /// `self` comes from the server, with `arg_count` entries in `arg_type`.
    pub unsafe fn all_strings(&mut self) {
        for i in 0..self.count() {
            *self.arg_type.add(i) = STRING_RESULT;
        }
    }

    /// Argument `i` as bytes, or `None` for an SQL NULL.
    ///
    /// # Safety
    /// `self` comes from the server and `i < arg_count`; the bytes live for the call.
    pub unsafe fn bytes(&self, i: usize) -> Option<&[u8]> {
        let p = *self.args.add(i);
        if p.is_null() {
            return None;
        }
        let len = *self.lengths.add(i) as usize;
        Some(std::slice::from_raw_parts(p as *const u8, len))
    }
}

/// Copies `msg` into the `message` buffer of `xxx_init`, cut to fit, NUL-terminated.
///
/// # Safety
/// `message` points at [`ERRMSG_SIZE`] writable bytes.
pub unsafe fn set_message(message: *mut c_char, msg: &str) {
    if message.is_null() {
        return;
    }
    let bytes = msg.as_bytes();
    let n = bytes.len().min(ERRMSG_SIZE - 1);
    std::ptr::copy_nonoverlapping(bytes.as_ptr(), message as *mut u8, n);
    *message.add(n) = 0;
}
