//! Python frames among native ones, py-spy `--native` style (issue 16): each native frame of
//! CPython's eval loop (`_PyEval_EvalFrameDefault`) is replaced by the Python frames that C
//! call was running, and CPython's other frames between them (`_PyObject_MakeTpCall`,
//! `slot_tp_init`, `Py_RunMain`, … — the interpreter's plumbing) are left out, as py-spy does.
//! Frames of every other module stay where they are: a C extension calling back into Python
//! shows between the Python frames it sits between.
//!
//! Python frames that cannot be placed (the native stack was cut by `FDGUARD_STACK_DEPTH`
//! before reaching their eval frame, or no eval frame could be named) are appended after the
//! native frames, in order; if no eval frame was found at all, the native frames are kept
//! whole. Pure function of the symbolised frames: unit-tested below.

use fdguard_report::Frame;

/// A Python frame and whether it is the last one of its eval call (see `track::python::slot`).
pub struct PythonFrame {
    pub frame: Frame,
    pub group_end: bool,
}

fn is_eval_loop(frame: &Frame) -> bool {
    frame
        .function
        .as_deref()
        .is_some_and(|f| f.starts_with("_PyEval_EvalFrameDefault"))
}

/// The creating stack with `python` (innermost first) merged into `native` (innermost first,
/// one entry per inlining level: the levels of one return address share its `ip`).
pub fn merge(native: Vec<Frame>, python: Vec<PythonFrame>) -> Vec<Frame> {
    if python.is_empty() {
        return native;
    }
    let mut groups: Vec<Vec<Frame>> = Vec::new();
    let mut open = false;
    for p in python {
        if !open {
            groups.push(Vec::new());
            open = true;
        }
        if let Some(group) = groups.last_mut() {
            group.push(p.frame);
        }
        if p.group_end {
            open = false;
        }
    }
    let interpreter: Vec<String> = native
        .iter()
        .filter(|f| is_eval_loop(f))
        .filter_map(|f| f.module.clone())
        .collect();
    let mut out = Vec::with_capacity(native.len() + groups.iter().map(Vec::len).sum::<usize>());
    let mut groups = groups.into_iter();
    if interpreter.is_empty() {
        out.extend(native);
        out.extend(groups.flatten());
        return out;
    }
    let mut i = 0;
    while i < native.len() {
        let ip = &native[i].ip;
        let run = native[i..].iter().take_while(|f| &f.ip == ip).count();
        let levels = &native[i..i + run];
        if levels.iter().any(is_eval_loop) {
            out.extend(groups.next().unwrap_or_default());
        } else if !levels[0]
            .module
            .as_ref()
            .is_some_and(|m| interpreter.contains(m))
        {
            out.extend_from_slice(levels);
        }
        i += run;
    }
    out.extend(groups.flatten());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use fdguard_report::FrameKind;

    fn native(ip: &str, function: &str, module: &str) -> Frame {
        Frame {
            ip: ip.into(),
            function: Some(function.into()),
            module: Some(module.into()),
            ..Frame::default()
        }
    }

    fn py(function: &str, group_end: bool) -> PythonFrame {
        PythonFrame {
            frame: Frame {
                function: Some(function.into()),
                file: Some("/app/x.py".into()),
                line: Some(1),
                kind: FrameKind::Python,
                ..Frame::default()
            },
            group_end,
        }
    }

    fn names(frames: &[Frame]) -> Vec<&str> {
        frames
            .iter()
            .map(|f| f.function.as_deref().unwrap_or("?"))
            .collect()
    }

    const LIBPY: &str = "/usr/lib/libpython3.11.so.1.0";

    #[test]
    fn eval_frames_become_their_python_frames_and_plumbing_goes() {
        let stack = vec![
            native("0x1", "socket", "/lib/libc.so.6"),
            native("0x2", "sock_initobj", "/py/_socket.so"),
            native("0x3", "slot_tp_init", LIBPY),
            native("0x4", "_PyEval_EvalFrameDefault", LIBPY),
            native("0x5", "_PyObject_MakeTpCall", LIBPY),
            native("0x6", "cext_callback", "/py/ext.so"),
            native("0x7", "call_function", LIBPY), // an inlined level of 0x7
            native("0x7", "_PyEval_EvalFrameDefault.cold", LIBPY),
            native("0x8", "Py_RunMain", LIBPY),
            native("0x9", "main", "/usr/bin/python3.11"),
        ];
        let merged = merge(
            stack,
            vec![
                py("socket.__init__", true),
                py("create_connection", false),
                py("leak", true),
                py("<module>", true),
            ],
        );
        assert_eq!(
            names(&merged),
            [
                "socket",
                "sock_initobj",
                "socket.__init__",
                "cext_callback",
                "create_connection",
                "leak",
                "main",
                "<module>" // its eval frame was not in the native stack: appended
            ]
        );
    }

    #[test]
    fn without_an_eval_frame_everything_is_kept_and_python_appended() {
        let stack = vec![
            native("0x1", "socket", "/lib/libc.so.6"),
            native("0x2", "PyObject_Call", LIBPY),
        ];
        let merged = merge(stack, vec![py("f", true), py("g", false)]);
        assert_eq!(names(&merged), ["socket", "PyObject_Call", "f", "g"]);
        assert_eq!(merged[2].kind, FrameKind::Python);
    }

    #[test]
    fn no_python_frames_leaves_the_stack_alone() {
        let stack = vec![
            native("0x1", "socket", "/lib/libc.so.6"),
            native("0x4", "_PyEval_EvalFrameDefault", LIBPY),
        ];
        assert_eq!(merge(stack.clone(), Vec::new()), stack);
    }
}
