"""POST /v1/edit: an uploaded product photo in every metal or with every gemstone at its own size (the model's
translator), or inverted into the model and re-drawn in every value of one attribute (method=invert)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from jewelgan.edit import EditError, check_invertible, edit, invert, load_photo
from jewelgan.edit.reference import measure_reference
from jewelgan.edit.translate import SourceUnknown, TranslatorError, edit_metals, edit_stones, model_translator
from jewelgan.image_files import data_url
from jewelgan.serve.context import ServeContext, form_attributes, form_body
from jewelgan.serve.errors import ApiError
from jewelgan.serve.uploads import EDIT_COST, full_size_reader, read_upload


def edit_router(ctx: ServeContext) -> APIRouter:
    router = APIRouter()
    settings = ctx.settings

    @router.post("/v1/edit", tags=["edit"], dependencies=[Depends(form_body)],
                 summary="Upload a product photo; get it back in every value of one attribute.")
    async def edit_photo(request: Request, photo: UploadFile = File(..., description="JPEG, PNG, WebP, ... "
                                                                          "(not stored after the answer)"),
                         attribute: str = Form("metal", description="The attribute to step through its values."),
                         attributes: str = Form("{}", description="JSON of what the photo shows, where known, "
                                                                    "e.g. {\"category\": \"ring\"}"),
                         model: str | None = Form(None), keep_detail: bool = Form(True),
                         method: str | None = Form(None, description="translate: the translator changes the "
                                                   "metal or gemstone at the photo's size (the default where the "
                                                   "model carries one); invert: re-draw through the generator."),
                         source: str | None = Form(None, description="The photo's own metal or gemstone "
                                                   "(translate); without it the translator reads it (a metal: asks "
                                                   "when unsure)."),
                         references: list[UploadFile] = File([], description="Your own photos of one metal "
                                                             "(translate, metal): edits to reference_metal take "
                                                             "its tint measured on them instead of the studio's."),
                         reference_metal: str | None = Form(None, description="The metal the references show."),
                         who: str = Depends(ctx.caller)):
        name, m = ctx.pick(model)
        if method is None:
            method = "translate" if model_translator(m.info["path"]) is not None else "invert"
        if method == "translate":
            return await translate_photo(name, m, photo, attribute, source, request, references, reference_metal)
        if method != "invert":
            raise ApiError(422, f"unknown method {method!r}", "method", ["translate", "invert"])
        try:
            check_invertible(m)
        except EditError as e:
            raise ApiError(422, str(e), "model", [n for n, x in ctx.engine.models.items()
                                                  if hasattr(x.G, "synthesis")]) from None
        if attribute not in m.attributes:
            raise ApiError(422, f"unknown attribute {attribute!r}", "attribute", list(m.attributes))
        known = form_attributes(m, attributes)
        request.state.images = m.schema.num_values(attribute)

        def work():
            image, mask = read_upload(photo.file, lambda path: load_photo(path, m.resolution), EditError,
                                      settings.max_upload_pixels)
            inv = invert(m, image, mask, known, None, settings.edit_steps[0], settings.edit_steps[1])
            edits = [edit(m, inv, {attribute: v}, keep_detail)[..., :3] for v in m.attributes[attribute]]
            return image, inv, edits

        async with ctx.heavy.take(EDIT_COST, "an edit"):  # an inversion: seconds of every core
            try:
                image, inv, edits = await run_in_threadpool(work)
            except EditError as e:
                raise ApiError(422, str(e), "photo") from None

        return {"model": name, "labels": inv.labels, "label_source": inv.label_source,
                "seconds": round(inv.seconds, 2), "attribute": attribute, "original": data_url(image),
                "reconstruction": data_url(inv.reconstruction[..., :3]),
                "images": [{"value": v, "data_url": data_url(im)} for v, im in zip(m.attributes[attribute], edits)]}

    async def translate_photo(name, m, photo, attribute, source, request, references, reference_metal):
        translator = model_translator(m.info["path"])
        if translator is None:
            raise ApiError(422, f"model {name!r} carries no metal translator; use method=invert", "method",
                           ["invert"])
        values = {"metal": translator.metals, "gemstone": list(translator.stones)}
        if not values.get(attribute):
            raise ApiError(422, f"the translator changes the metal or the gemstone, not {attribute!r}; use "
                           "method=invert", "attribute", [a for a, v in values.items() if v])
        known = values[attribute]
        if source is not None and source not in known:
            raise ApiError(422, f"unknown source {attribute} {source!r}", "source", known)
        if references and (attribute != "metal" or reference_metal not in translator.metals):
            raise ApiError(422, "references measure one metal's tint for metal edits: give attribute=metal and "
                           "reference_metal", "reference_metal", translator.metals)
        request.state.images = len(known)

        def measured():
            photos = []
            for i, upload in enumerate(references):
                label = f"reference {i + 1} ({upload.filename or 'unnamed'})"
                try:
                    photos.append(read_upload(upload.file, full_size_reader(TranslatorError), TranslatorError,
                                              settings.max_upload_pixels))
                except TranslatorError as e:
                    raise ApiError(422, f"{label}: {e}", "references") from None
            names = [u.filename or f"reference {i + 1}" for i, u in enumerate(references)]
            try:
                return measure_reference(translator, reference_metal, photos, names)
            except TranslatorError as e:
                raise ApiError(422, str(e), "references") from None

        def work():
            reference = measured() if references else None
            image = read_upload(photo.file, full_size_reader(TranslatorError), TranslatorError,
                                settings.max_upload_pixels)
            if attribute == "gemstone":
                return image, edit_stones(translator, image, known, source), None
            tints = {reference.metal: reference.tint} if reference else None
            return image, edit_metals(translator, image, known, source, tints=tints), reference

        async with ctx.heavy.take(EDIT_COST, "an edit"):
            try:
                image, edits, reference = await run_in_threadpool(work)
            except SourceUnknown as e:
                raise ApiError(422, str(e), "source", known) from None
            except TranslatorError as e:
                raise ApiError(422, str(e), "photo") from None
        by_value = {e.target: e.image for e in edits}
        found = edits[0].source if edits else source
        return {"model": name, "method": "translate", "source": found,
                "source_read": edits[0].source_read if edits else "given",
                "seconds": round(sum(e.seconds for e in edits), 2), "attribute": attribute,
                "size": [int(image.shape[1]), int(image.shape[0])], "original": data_url(image),
                "images": [{"value": v, "data_url": data_url(by_value.get(v, image))} for v in known]} \
            | ({"reference": reference.describe()} if reference else {})

    return router
